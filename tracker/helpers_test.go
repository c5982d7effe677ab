package tracker

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/require"
)

// leakLog collects the events a tracker reports, for assertions.
type leakLog struct {
	mu       sync.Mutex
	leaks    []Leak
	resolved []Leak
}

func (l *leakLog) onLeak(x Leak)     { l.mu.Lock(); l.leaks = append(l.leaks, x); l.mu.Unlock() }
func (l *leakLog) onResolved(x Leak) { l.mu.Lock(); l.resolved = append(l.resolved, x); l.mu.Unlock() }

func (l *leakLog) Leaks() []Leak {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Leak(nil), l.leaks...)
}

func (l *leakLog) Resolved() []Leak {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Leak(nil), l.resolved...)
}

// newTestTracker makes a tracker whose poller never fires on its own (tests
// call Poll), reporting into a leakLog, closed at the end of the test.
func newTestTracker(t testing.TB, opts ...Option) (*Tracker, *leakLog) {
	t.Helper()
	log := &leakLog{}
	base := []Option{WithPollInterval(time.Hour), WithGracePeriod(0), WithLogger(nil),
		WithOnLeak(log.onLeak), WithOnResolved(log.onResolved)}
	tr := New(append(base, opts...)...)
	t.Cleanup(func() { tr.Close() })
	return tr, log
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialPair returns a tracked client conn and the raw server side of the
// same loopback connection.
func dialPair(t testing.TB, tr *Tracker) (client net.Conn, server net.Conn) {
	t.Helper()
	ln := listen(t)
	client, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// pollUntil polls tr until cond holds or the deadline passes. The kernel
// processes a loopback FIN asynchronously, so a probe right after the peer's
// Close may still see ESTABLISHED.
func pollUntil(t testing.TB, tr *Tracker, within time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		tr.Poll()
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// halfClosedServer returns the tracked, still unread server side of a
// loopback connection whose client has half-closed (CloseWrite) and reads
// whatever the server replies. The caller's first Read is what the reports
// name as the handler's line.
func halfClosedServer(t testing.TB, tr *Tracker) net.Conn {
	t.Helper()
	ln := tr.WrapListener(listen(t))
	t.Cleanup(func() { ln.Close() }) // a wrapper dropped would be reported collected
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	go io.Copy(io.Discard, client) // the peer reads the whole reply
	require.NoError(t, client.(*net.TCPConn).CloseWrite())
	return server
}

// unixPair returns a tracked client conn and the raw server side of one
// unix stream connection.
func unixPair(t testing.TB, tr *Tracker) (client, server net.Conn) {
	t.Helper()
	path := t.TempDir() + "/s"
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, err = tr.WrapDialer(nil)(t.Context(), "unix", path)
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// registrySize is how many records the registry holds, closed ones still on
// a young list included.
func registrySize(t *Tracker) int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m) + len(sh.young)
		sh.mu.Unlock()
	}
	return n
}

// collectedLeaks is the part of tr.Leaks() collected without Close.
func collectedLeaks(tr *Tracker) []Leak {
	var out []Leak
	for _, l := range tr.Leaks() {
		if l.Reason == ReasonCollected {
			out = append(out, l)
		}
	}
	return out
}

// socketOf describes the socket under c, as the tracker does when it wraps c.
func socketOf(c net.Conn, network string) sock.Handle {
	var h sock.Handle
	h.Describe(c, network)
	return h
}

// withSweepOnly makes the tracker probe every socket on every tick, as
// systems without the epoll engine do: the baseline the benchmarks compare
// against.
func withSweepOnly() Option {
	return optionFunc(func(c *config) error { c.sweepOnly = true; return nil })
}

// idOf returns the record id of a tracked connection: its Resource.ID.
func idOf(c net.Conn) uint64 { return c.(trackedConn).tracked().id }

// lockedBuffer is a writer that goroutines (a logger, a signal handler)
// write to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
