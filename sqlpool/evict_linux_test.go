//go:build linux

package sqlpool_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// closingProxy forwards connections to target and, once armed, closes the
// client's side right after it forwards the rows of a query, up to
// PostgreSQL's ReadyForQuery, in one piece: a server that hangs up just
// after answering.
type closingProxy struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	wg     sync.WaitGroup
	// hungUp receives the client's address of each connection it closed.
	hungUp chan string
}

func startClosingProxy(t *testing.T, target string) *closingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &closingProxy{ln: ln, target: target, hungUp: make(chan string, 1)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *closingProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { io.Copy(server, client); server.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			// A query's rows (RowDescription first) up to ReadyForQuery: not
			// the answer to the ping of pgx's own ResetSession. The hang-up is
			// decided before the answer goes out: once it has, the test may
			// already have armed the proxy for its next round.
			answer := buf[0] == 'T' && n >= 6 && buf[n-6] == 'Z' && bytes.Equal(buf[n-5:n-1], []byte{0, 0, 0, 5})
			hangUp := answer && p.armed.CompareAndSwap(true, false)
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
			if hangUp {
				client.Close() // a FIN just after the answer
				p.hungUp <- client.RemoteAddr().String()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tcpCloseWait is Linux's TCP_CLOSE_WAIT, tcpi_state's number for a socket
// whose peer's FIN has arrived.
const tcpCloseWait = 8

// tcpState is the kernel's TCP state of the socket under c.
func tcpState(t *testing.T, c net.Conn) uint8 {
	rc, err := c.(syscall.Conn).SyscallConn()
	require.NoError(t, err)
	var info *unix.TCPInfo
	require.NoError(t, rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }))
	require.NoError(t, err)
	return info.State
}

// A connection whose server hangs up just after its last answer is evicted
// at the very next checkout, however soon that comes: the socket is asked at
// every checkout, not spared for having just been used.
func TestConnectionClosedJustAfterItsAnswerIsEvicted(t *testing.T) {
	b := backends[0] // pgx, whose own ResetSession checks nothing within a second of its last use
	b.need(t)
	proxy := startClosingProxy(t, "127.0.0.1:5432")
	tr, _ := newTracker(t)
	// Our side of each connection, by its address: pgx dials more than the
	// pool's connections (a cancel request as it closes one), so the last
	// dial is not always the connection the proxy hung up on.
	var mu sync.Mutex
	dialed := map[string]net.Conn{}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		c, err := tr.WrapDialer(nil)(ctx, network, proxy.ln.Addr().String())
		if err == nil {
			mu.Lock()
			dialed[c.LocalAddr().String()] = c
			mu.Unlock()
		}
		return c, err
	}
	// The simple protocol answers a query in one reply, which the proxy's
	// hang-up follows: the extended one answers a first query in two.
	cfg, err := pgx.ParseConfig(pgDSN())
	require.NoError(t, err)
	cfg.DialFunc = pgconn.DialFunc(dial)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	db := sqlpool.OpenDB(stdlib.GetConnector(*cfg), sqlpool.WithTracker(tr))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	var one int
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))

	for round := range 10 {
		proxy.armed.Store(true)
		require.NoError(t, db.QueryRow("SELECT 1").Scan(&one), "round %d: the answer before the hang-up", round)
		var addr string
		select {
		case addr = <-proxy.hungUp:
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: the proxy never hung up", round)
		}
		mu.Lock()
		c := dialed[addr]
		mu.Unlock()
		require.NotNil(t, c, "round %d: the proxy hung up on %s, which the pool never dialed", round, addr)
		deadline := time.Now().Add(2 * time.Second)
		for tcpState(t, c) != tcpCloseWait {
			require.True(t, time.Now().Before(deadline), "round %d: the proxy's close never arrived", round)
		}
		require.NoError(t, db.QueryRow("SELECT 1").Scan(&one), "round %d: handed the dead connection out", round)
	}
	st, ok := sqlpool.StatsOf(db)
	require.True(t, ok)
	assert.Equal(t, uint64(10), st.Evicted)
}
