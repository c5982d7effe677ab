package tracker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestWrapNil(t *testing.T) {
	tr, _ := newTestTracker(t)
	assert.Nil(t, tr.WrapConn(nil))
	assert.Nil(t, tr.WrapListener(nil))
	assert.Nil(t, Unwrap(nil))
	var h *Handle
	h.Close() // a nil Handle is safe
	assert.Zero(t, h.ID())
}

func TestDoubleCloseReturnsWhatTheConnReturns(t *testing.T) {
	tr, _ := newTestTracker(t)
	client, _ := dialPair(t, tr)
	require.NoError(t, client.Close())
	err := client.Close()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Empty(t, tr.Open())

	// The very error the unwrapped conn gives on a second Close.
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	assert.Equal(t, "close", opErr.Op)
	assert.Equal(t, client.RemoteAddr(), opErr.Addr)
}

func TestUnwrap(t *testing.T) {
	tr, _ := newTestTracker(t)
	other, _ := newTestTracker(t)
	client, _ := dialPair(t, tr)
	raw := Unwrap(client)
	_, isTCP := raw.(*net.TCPConn)
	assert.True(t, isTCP)
	assert.Same(t, raw, Unwrap(raw), "an unwrapped conn is returned as is")
	assert.Same(t, client, tr.WrapConn(client), "wrapping twice with one tracker is a no-op")
	twice := other.WrapConn(client)
	assert.NotSame(t, client, twice)
	_, ok := twice.(tcpMethods)
	assert.True(t, ok, "a conn wrapped by two trackers keeps the TCP methods")
	assert.Same(t, raw, Unwrap(twice), "Unwrap peels every layer")
	assert.Len(t, other.Open(), 1)
	require.NoError(t, twice.Close())
	assert.Empty(t, other.Open())
}

// Every method of the real types, with its exact signature, is on the
// wrapper: a type assertion that works on the conn works on the wrapper.
func TestWrappersHaveEveryMethodOfTheirType(t *testing.T) {
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeFor[*net.TCPConn](), reflect.TypeFor[*tcpConn]()},
		{reflect.TypeFor[*net.UnixConn](), reflect.TypeFor[*unixConn]()},
		{reflect.TypeFor[*net.TCPListener](), reflect.TypeFor[*tcpListener]()},
		{reflect.TypeFor[*net.UnixListener](), reflect.TypeFor[*unixListener]()},
	} {
		real, wrapper := pair[0], pair[1]
		for i := range real.NumMethod() {
			m := real.Method(i)
			if strings.HasPrefix(real.String(), "*net.") && strings.HasSuffix(real.String(), "Listener") &&
				(strings.HasPrefix(m.Name, "Accept") || m.Name == "File") {
				continue // AcceptTCP would return an untracked conn; File dups the fd
			}
			w, ok := wrapper.MethodByName(m.Name)
			if assert.True(t, ok, "%s lacks %s", wrapper, m.Name) {
				assert.Equal(t, m.Type.String()[len("func("+real.String()):],
					w.Type.String()[len("func("+wrapper.String()):], "%s.%s", wrapper, m.Name)
			}
		}
	}
}

type (
	tcpMethods  = tcpLike
	unixMethods = unixLike
)

func TestTCPConnKeepsItsMethods(t *testing.T) {
	tr, _ := newTestTracker(t)
	client, server := dialPair(t, tr)
	tc, ok := client.(tcpMethods)
	require.True(t, ok, "a wrapped *net.TCPConn must keep every method")
	require.NoError(t, tc.SetNoDelay(true))
	require.NoError(t, tc.SetKeepAlive(true))
	require.NoError(t, tc.SetKeepAlivePeriod(time.Minute))
	require.NoError(t, tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute}))
	require.NoError(t, tc.SetReadBuffer(1<<16))
	require.NoError(t, tc.SetWriteBuffer(1<<16))
	_, err := tc.MultipathTCP()
	require.NoError(t, err)
	rc, err := tc.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(uintptr) {}))

	// CloseWrite sends FIN; the wrapper stays open and tracked.
	require.NoError(t, tc.CloseWrite())
	got, err := io.ReadAll(server)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Len(t, tr.Open(), 1)
	require.NoError(t, tc.SetLinger(0))
	require.NoError(t, tc.CloseRead())
}

// io.Copy between two wrapped TCP conns goes through ReadFrom/WriteTo of the
// underlying *net.TCPConn (splice on Linux), and sees the source's EOF.
func TestCopyBetweenWrappedConnsUsesTCPFastPath(t *testing.T) {
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour))
	src, srcPeer := dialPair(t, tr)
	dst, dstPeer := dialPair(t, tr)

	_, isReaderFrom := dst.(io.ReaderFrom)
	require.True(t, isReaderFrom)
	inner, rec := unwrapReader(src)
	assert.IsType(t, (*net.TCPConn)(nil), inner, "ReadFrom must hand the raw source to *net.TCPConn")
	assert.NotNil(t, rec)

	payload := bytes.Repeat([]byte("connleak"), 64<<10)
	go func() {
		srcPeer.Write(payload)
		srcPeer.Close()
	}()
	received := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(dstPeer)
		received <- b
	}()
	n, err := io.Copy(dst, src)
	require.NoError(t, err)
	assert.EqualValues(t, len(payload), n)
	require.NoError(t, dst.Close())
	assert.Equal(t, payload, <-received)

	// The copy ended at the source's EOF: the source's peer has closed.
	open := tr.Open()
	require.Len(t, open, 1)
	assert.Equal(t, StatePeerClosed, open[0].State)

	// A LimitedReader around a wrapped conn keeps its count right.
	lsrc, lpeer := dialPair(t, tr)
	ldst, ldstPeer := dialPair(t, tr)
	go lpeer.Write([]byte("0123456789"))
	lr := &io.LimitedReader{R: lsrc, N: 4}
	n, err = ldst.(io.ReaderFrom).ReadFrom(lr)
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)
	assert.EqualValues(t, 0, lr.N)
	buf := make([]byte, 4)
	_, err = io.ReadFull(ldstPeer, buf)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(buf))

	// WriteTo: copy from a wrapped conn to a plain writer.
	wsrc, wpeer := dialPair(t, tr)
	go func() { wpeer.Write([]byte("hello")); wpeer.Close() }()
	var out bytes.Buffer
	_, err = wsrc.(io.WriterTo).WriteTo(&out)
	require.NoError(t, err)
	assert.Equal(t, "hello", out.String())
}

func TestUnixConnKeepsItsMethods(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix sockets are not available on every windows")
	}
	tr, _ := newTestTracker(t)
	path := t.TempDir() + "/s"
	ln := tr.WrapListener(mustListen(t, "unix", path))
	defer ln.Close()
	_, ok := ln.(interface{ SetUnlinkOnClose(bool) })
	assert.True(t, ok)
	_, ok = ln.(interface{ SetDeadline(time.Time) error })
	assert.True(t, ok)
	c, err := tr.WrapDialer(nil)(t.Context(), "unix", path)
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	for _, x := range []net.Conn{c, s} {
		uc, ok := x.(unixMethods)
		require.True(t, ok, "a wrapped *net.UnixConn must keep every method")
		require.NoError(t, uc.SetReadBuffer(4096))
	}
	require.NoError(t, c.(unixMethods).CloseWrite())
	b, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Empty(t, b)
}

// Any conn type with SyscallConn keeps it, so socket options stay reachable.
func TestOtherConnKeepsSyscallConn(t *testing.T) {
	tr, _ := newTestTracker(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	u, err := net.Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	w := tr.WrapConn(u)
	_, ok := w.(syscall.Conn)
	assert.True(t, ok)
	_, err = w.Write([]byte("ping"))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	// A conn type without it does not grow one.
	a, b := net.Pipe()
	defer b.Close()
	wp := tr.WrapConn(a)
	_, ok = wp.(syscall.Conn)
	assert.False(t, ok)
	require.NoError(t, wp.Close())
	assert.Empty(t, tr.Open())
}

func mustListen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	return ln
}

//go:noinline
func acceptLoop(ln net.Listener, out chan<- net.Conn) {
	c, err := ln.Accept()
	if err != nil {
		close(out)
		return
	}
	forgetfulHandler(c, out)
}

// 200 goroutines open, use and close tracked conns at once; run with -race.
func TestConcurrentOpenClose(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour))
	ln := tr.WrapListener(listen(t))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	dial := tr.WrapDialer(nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() { // the poller's work, concurrently with the I/O
		for {
			select {
			case <-stop:
				return
			default:
				tr.Poll()
				tr.Open()
				tr.Leaks()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				c, err := dial(t.Context(), "tcp", ln.Addr().String())
				if !assert.NoError(t, err) {
					return
				}
				buf := []byte("echo")
				_, err = c.Write(buf)
				assert.NoError(t, err)
				_, err = io.ReadFull(c, buf)
				assert.NoError(t, err)
				assert.NoError(t, c.Close())
			}
		}()
	}
	wg.Wait()
	close(stop)
	require.NoError(t, ln.Close())
	assert.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(tr.Open()) == 0 }),
		"accepted conns are closed by the echo goroutines")
	assert.Empty(t, log.Leaks())
}
