package nethttp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proto is how a test's client talks to its server.
type proto struct {
	name   string
	tls    bool
	http2  bool
	hijack bool // net/http supports Hijack on it
}

func (p proto) major() int {
	if p.http2 {
		return 2
	}
	return 1
}

var (
	http1    = proto{name: "HTTP/1.1", hijack: true}
	http1TLS = proto{name: "HTTP/1.1 over TLS", tls: true, hijack: true}
	http2TLS = proto{name: "HTTP/2 over TLS", tls: true, http2: true}
	protos   = []proto{http1, http1TLS, http2TLS}
)

// trackedServer starts handler on a loopback server made ready by
// WrapServer, on a listener tr wraps, with TLS (offering HTTP/2 and
// HTTP/1.1) when p says so. setup, if not nil, changes the server before
// WrapServer.
func trackedServer(t *testing.T, tr *tracker.Tracker, handler http.Handler, p proto, setup func(*http.Server)) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(handler)
	ts.Listener = tr.WrapListener(ts.Listener)
	if setup != nil {
		setup(ts.Config)
	}
	nethttp.WrapServer(ts.Config, nethttp.WithTracker(tr))
	if p.tls {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts
}

// plainClient is an untracked client of ts speaking p.
func plainClient(t *testing.T, ts *httptest.Server, p proto) *http.Client {
	t.Helper()
	tp := ts.Client().Transport.(*http.Transport).Clone()
	tp.Protocols = new(http.Protocols)
	tp.Protocols.SetHTTP1(!p.http2)
	tp.Protocols.SetHTTP2(p.http2)
	if tp.TLSClientConfig != nil {
		tp.TLSClientConfig.NextProtos = nil // httptest's offers h2 alone; net/http offers what Protocols say
	}
	c := &http.Client{Transport: tp}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// rawConn dials ts as an HTTP/1.1 client that speaks for itself.
func rawConn(t *testing.T, ts *httptest.Server, p proto) net.Conn {
	t.Helper()
	addr := ts.Listener.Addr().String()
	var c net.Conn
	var err error
	if p.tls {
		cfg := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

// lineOf is the line of this package's file (the caller's) that carries
// marker, once.
func lineOf(t *testing.T, marker string) int {
	t.Helper()
	_, file, _, _ := runtime.Caller(1)
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, marker) && !strings.Contains(l, "lineOf(") {
			require.Zero(t, line, "marker %q twice in %s", marker, file)
			line = i + 1
		}
	}
	require.NotZero(t, line, "marker %q not in %s", marker, file)
	return line
}

// waitLeak waits, bounded, for log to hold a leak of kind and returns it.
func waitLeak(t *testing.T, log *leakLog, kind tracker.Kind) tracker.Leak {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range log.all() {
			if l.Kind == kind {
				return l
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s leak reported; reported: %v", kind, log.all())
	return tracker.Leak{}
}

// openOf is what tr has open of kind.
func openOf(tr *tracker.Tracker, kind tracker.Kind) []tracker.Resource {
	var out []tracker.Resource
	for _, r := range tr.Open() {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// settle polls tr until nothing of kind is open, bounded, and reports
// whether it got there.
func settle(tr *tracker.Tracker, kind tracker.Kind) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tr.Poll()
		if len(openOf(tr, kind)) == 0 {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// getRaw sends a GET for path over c and reads the response.
func getRaw(t *testing.T, c net.Conn, path string) string {
	t.Helper()
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: connleak.test\r\n\r\n", path)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// forgetful hijacks every request's connection, answers, and keeps the
// connection without ever closing it: the bug of a websocket server that
// drops a session on an error path but not its connection.
type forgetful struct {
	mu   sync.Mutex
	kept []net.Conn
}

func (f *forgetful) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	conn, brw, err := w.(http.Hijacker).Hijack() // the hijack a leak must name
	if err != nil {
		panic(err)
	}
	brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	brw.Flush()
	f.mu.Lock()
	f.kept = append(f.kept, conn)
	f.mu.Unlock()
}

func (f *forgetful) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.kept {
		c.Close()
	}
	f.kept = nil
}

// A hijacked connection left open after its client has gone is reported
// with the line that hijacked it, and is tracked until its own Close.
func TestHijackedConnectionLeakNamesTheHijackLine(t *testing.T) {
	hijackLine := lineOf(t, "// the hijack a leak must name")
	for _, p := range []proto{http1, http1TLS} {
		t.Run(p.name, func(t *testing.T) {
			tr, log := newTracker(t)
			f := &forgetful{}
			defer f.closeAll()
			ts := trackedServer(t, tr, f, p, nil)
			c := rawConn(t, ts, p)
			assert.Equal(t, "hi", getRaw(t, c, "/ws"))
			require.NoError(t, c.Close()) // the client goes; the server's side stays

			l := waitLeak(t, log, tracker.KindConn)
			assert.Equal(t, tracker.ReasonPeerClosed, l.Reason)
			assert.Equal(t, "CLOSE_WAIT", l.SocketState)
			assert.True(t, strings.HasSuffix(l.Site().File, "nethttp/server_test.go"), l.Site().File)
			assert.Equal(t, hijackLine, l.Site().Line, l.String())
			assert.Equal(t, "github.com/connleak/connleak/nethttp_test.(*forgetful).ServeHTTP", l.Site().Function)
			require.NotNil(t, l.HeldBy)
			assert.Equal(t, nethttp.KindHijacked, l.HeldBy.Kind)
			assert.Contains(t, l.String(), "held by http.hijacked")

			f.closeAll() // the fix: closed at last, the leak resolves
			assert.True(t, settle(tr, tracker.KindConn), "still open: %v", tr.Open())
			assert.Empty(t, openOf(tr, nethttp.KindHijacked), "the hijack ends with its connection")
			assert.Len(t, log.all(), 1, "one report: %v", log.all())
		})
	}
}

// A hijacked connection closed by its handler is not reported, and is the
// connection net/http hands out, with everything it offers: over TCP the
// tracked connection with CloseWrite and the rest of *net.TCPConn's
// methods, over TLS the *tls.Conn itself; and the bufio.ReadWriter that
// holds what the client sent beyond the request.
func TestHijackedConnectionClosedIsNotReported(t *testing.T) {
	for _, p := range []proto{http1, http1TLS} {
		t.Run(p.name, func(t *testing.T) {
			tr, log := newTracker(t)
			type seen struct {
				line            string
				tcp, tls, owned bool
			}
			got := make(chan seen, 1)
			handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					panic(err)
				}
				defer conn.Close()
				var s seen
				s.owned = len(openOf(tr, nethttp.KindHijacked)) == 1
				_, s.tls = conn.(*tls.Conn)
				_, s.tcp = tracker.Unwrap(conn).(*net.TCPConn)
				if _, ok := conn.(interface {
					CloseWrite() error
					SetKeepAlive(bool) error
					SetLinger(int) error
				}); !ok && !s.tls {
					s.tcp = false // the tracked connection lost *net.TCPConn's methods
				}
				s.line, _ = brw.ReadString('\n') // sent after the request, in the same write
				brw.WriteString("pong\n")
				brw.Flush()
				got <- s
			})
			ts := trackedServer(t, tr, handler, p, nil)
			c := rawConn(t, ts, p)
			_, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: connleak.test\r\n\r\nping\n")
			require.NoError(t, err)
			reply, err := io.ReadAll(c) // to the handler's Close
			require.NoError(t, err)
			assert.Equal(t, "pong\n", string(reply))
			s := <-got
			assert.Equal(t, "ping\n", s.line)
			assert.True(t, s.owned, "tracked while hijacked")
			assert.Equal(t, p.tls, s.tls, "a *tls.Conn over TLS")
			assert.Equal(t, !p.tls, s.tcp, "the tracked *net.TCPConn over TCP, with its methods")

			time.Sleep(100 * time.Millisecond) // past the grace
			assert.True(t, settle(tr, tracker.KindConn), "still open: %v", tr.Open())
			assert.Empty(t, openOf(tr, nethttp.KindHijacked))
			assert.Empty(t, log.all())
		})
	}
}

// A hijacked connection dropped without Close is reported collected, and
// so is its hijack, with the line that hijacked it.
func TestHijackedConnectionDroppedIsCollected(t *testing.T) {
	tr, log := newTracker(t)
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, brw, err := w.(http.Hijacker).Hijack() // the hijack dropped
		if err != nil {
			panic(err)
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
		brw.Flush()
	})
	ts := trackedServer(t, tr, handler, http1, nil)
	c := rawConn(t, ts, http1)
	assert.Equal(t, "hi", getRaw(t, c, "/ws"))

	// The hijack and its connection may be collected in different GC
	// cycles, the one's cleanup running before the other is unreachable, so
	// the loop waits for both.
	deadline := time.Now().Add(5 * time.Second)
	var hijack tracker.Leak
	var conn bool
	for (hijack.ID == 0 || !conn) && time.Now().Before(deadline) {
		runtime.GC()
		tr.Poll()
		for _, l := range log.all() {
			if l.Kind == nethttp.KindHijacked {
				hijack = l
			}
			conn = conn || (l.Kind == tracker.KindConn && l.Reason == tracker.ReasonCollected)
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NotZero(t, hijack.ID, "the dropped hijack was never reported; reported: %v", log.all())
	assert.Equal(t, tracker.ReasonCollected, hijack.Reason)
	assert.Equal(t, lineOf(t, "// the hijack dropped"), hijack.Site().Line)
	assert.True(t, conn, "the connection is reported collected too; reported: %v", log.all())
}

// Keep-alive connections, active in a slow request whose client waits for
// it or idle between requests past the grace period, are not reported;
// they close with their clients.
func TestKeepAliveConnectionsAreNotReported(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			tr, log := newTracker(t)
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(150 * time.Millisecond) // three grace periods, without I/O
				}
				io.WriteString(w, "ok")
			})
			ts := trackedServer(t, tr, handler, p, nil)
			c := plainClient(t, ts, p)
			var wg sync.WaitGroup
			for _, path := range []string{"/slow", "/", "/slow"} {
				wg.Go(func() {
					resp, err := c.Get(ts.URL + path)
					if !assert.NoError(t, err) {
						return
					}
					assert.Equal(t, p.major(), resp.ProtoMajor)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			wg.Wait()
			require.NotEmpty(t, openOf(tr, tracker.KindConn), "kept alive")
			time.Sleep(150 * time.Millisecond) // idle past the grace
			tr.Poll()
			assert.Empty(t, log.all())

			c.CloseIdleConnections()
			assert.True(t, settle(tr, tracker.KindConn), "net/http closes what its clients close: %v", tr.Open())
			assert.Empty(t, log.all())
		})
	}
}

// The server's own ConnState and ConnContext hooks still run.
func TestUserHooksStillRun(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			type ctxKey struct{}
			var mu sync.Mutex
			states := map[http.ConnState]int{}
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				v := fmt.Sprint(r.Context().Value(ctxKey{}))
				if r.URL.Path == "/hijack" {
					conn, brw, err := w.(http.Hijacker).Hijack()
					if err != nil {
						panic(err)
					}
					fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(v), v)
					brw.Flush()
					conn.Close()
					return
				}
				io.WriteString(w, v)
			})
			ts := trackedServer(t, tr, handler, p, func(srv *http.Server) {
				srv.ConnState = func(_ net.Conn, s http.ConnState) {
					mu.Lock()
					states[s]++
					mu.Unlock()
				}
				srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
					return context.WithValue(ctx, ctxKey{}, "the user's value")
				}
			})
			c := plainClient(t, ts, p)
			resp, err := c.Get(ts.URL)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, "the user's value", string(b))
			want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateClosed}
			if p.hijack {
				assert.Equal(t, "the user's value", getRaw(t, rawConn(t, ts, p), "/hijack"))
				want = append(want, http.StateHijacked)
			}
			c.CloseIdleConnections()
			assert.True(t, settle(tr, tracker.KindConn))
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return states[http.StateClosed] > 0
			}, 5*time.Second, 5*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			for _, s := range want {
				assert.NotZero(t, states[s], "ConnState %s not seen", s)
			}
		})
	}
}

// The ResponseWriter a handler gets under WrapServer and Middleware is
// net/http's own: it flushes a stream chunk by chunk, and
// http.ResponseController reaches its deadlines, full duplex and, over
// HTTP/1.1, Hijack.
func TestResponseWriterKeepsItsInterfaces(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			next := make(chan struct{})
			errs := make(chan error, 8)
			handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				rc := http.NewResponseController(w)
				errs <- rc.EnableFullDuplex()
				errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
				errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
				_, ok := w.(http.Flusher)
				errs <- map[bool]error{false: errors.New("not an http.Flusher")}[ok]
				io.WriteString(w, "first\n")
				errs <- rc.Flush()
				<-next // the client has read the first chunk: it was flushed
				io.WriteString(w, "second\n")
			})
			ts := trackedServer(t, tr, nethttp.Middleware(handler, nethttp.WithTracker(tr)), p, nil)
			c := plainClient(t, ts, p)
			resp, err := c.Get(ts.URL)
			require.NoError(t, err)
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			first, err := r.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "first\n", first)
			close(next)
			rest, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, "second\n", string(rest))
			for range 5 {
				assert.NoError(t, <-errs)
			}
		})
	}
	t.Run("Hijack", func(t *testing.T) {
		for _, p := range protos {
			tr, _ := newTracker(t)
			got := make(chan error, 1)
			handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				conn, brw, err := http.NewResponseController(w).Hijack()
				got <- err
				if err == nil {
					brw.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
					brw.Flush()
					conn.Close()
				}
			})
			ts := trackedServer(t, tr, nethttp.Middleware(handler, nethttp.WithTracker(tr)), p, nil)
			resp, err := plainClient(t, ts, p).Get(ts.URL)
			require.NoError(t, err, p.name)
			resp.Body.Close()
			if p.hijack {
				assert.NoError(t, <-got, p.name)
			} else {
				assert.ErrorIs(t, <-got, http.ErrNotSupported, p.name)
			}
		}
	})
}

// Listen returns a tracked listener, and reports net.Listen's errors.
func TestListen(t *testing.T) {
	tr, _ := newTracker(t)
	ln, err := nethttp.Listen("tcp", "127.0.0.1:0", nethttp.WithTracker(tr))
	require.NoError(t, err)
	listeners := openOf(tr, tracker.KindListener)
	require.Len(t, listeners, 1)
	assert.Equal(t, ln.Addr().String(), listeners[0].LocalAddr)
	assert.Equal(t, "github.com/connleak/connleak/nethttp_test.TestListen", listeners[0].Site().Function)

	_, err = nethttp.Listen("tcp", ln.Addr().String(), nethttp.WithTracker(tr))
	assert.Error(t, err, "the address is taken")
	require.NoError(t, ln.Close())
	assert.Empty(t, openOf(tr, tracker.KindListener))
	assert.Panics(t, func() { nethttp.WrapServer(nil) })
}
