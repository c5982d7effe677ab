package nethttp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leakLog collects the leaks a tracker reports.
type leakLog struct {
	mu    sync.Mutex
	leaks []tracker.Leak
}

func (l *leakLog) add(x tracker.Leak) { l.mu.Lock(); l.leaks = append(l.leaks, x); l.mu.Unlock() }

func (l *leakLog) all() []tracker.Leak {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tracker.Leak(nil), l.leaks...)
}

func newTracker(t *testing.T, opts ...tracker.Option) (*tracker.Tracker, *leakLog) {
	t.Helper()
	log := &leakLog{}
	opts = append([]tracker.Option{tracker.WithLogger(nil), tracker.WithOnLeak(log.add),
		tracker.WithPollInterval(10 * time.Millisecond), tracker.WithGracePeriod(50 * time.Millisecond)}, opts...)
	tr := tracker.New(opts...)
	t.Cleanup(func() { tr.Close() })
	return tr, log
}

// server answers /fail with a 500, /ok with a short body, and /stream with
// chunks for a while; it closes connections idle for 50 ms, as a server with
// a short idle timeout does.
func server(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(40 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.IdleTimeout = 50 * time.Millisecond
	if tls {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// client is a client of srv whose transport tracks through tr.
func client(t *testing.T, tr *tracker.Tracker, srv *httptest.Server) *http.Client {
	t.Helper()
	base := srv.Client().Transport.(*http.Transport)
	c := &http.Client{Transport: nethttp.NewTransport(base, nethttp.WithTracker(tr))}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// fetch has the classic bug: the body of a non-2xx response is never
// closed. (The tests cancel ctx when they end, which stops the read loop
// that net/http keeps waiting for the body.)
func fetch(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req) // the line a leak must name
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// fetchLine is the line of fetch's Get.
var fetchLine = func() int {
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(file)
	if err != nil {
		panic(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "c.Do(req) // the line a leak must name") {
			return i + 1
		}
	}
	panic("fetch's line not found")
}()

// The body left open on the error path is reported with the line that
// called Get, and so is its connection, in CLOSE_WAIT once the server has
// closed it for idleness, under net/http's read loop.
func TestUnclosedBodyOnErrorPath(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2 over TLS"}[secure], func(t *testing.T) {
			tr, log := newTracker(t, tracker.WithHoldLimit(nethttp.KindBody, 100*time.Millisecond))
			srv := server(t, secure)
			c := client(t, tr, srv)
			require.Error(t, fetch(t.Context(), c, srv.URL+"/fail"))

			var body, conn tracker.Leak
			deadline := time.Now().Add(5 * time.Second)
			for (body.ID == 0 || (!secure && conn.ID == 0)) && time.Now().Before(deadline) {
				for _, l := range log.all() {
					switch l.Kind {
					case nethttp.KindBody:
						body = l
					case tracker.KindConn:
						conn = l
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			require.NotZero(t, body.ID, "the body was not reported")
			assert.Equal(t, tracker.ReasonHeldTooLong, body.Reason)
			assert.Equal(t, "github.com/connleak/connleak/nethttp_test.fetch", body.Site().Function)
			assert.Equal(t, fetchLine, body.Site().Line)
			assert.True(t, strings.HasPrefix(body.Label, "GET http"), body.Label)
			if !secure {
				// HTTP/1.1: the server's idle close leaves the connection in
				// CLOSE_WAIT, held by the body.
				require.NotZero(t, conn.ID, "the connection was not reported")
				assert.Equal(t, tracker.ReasonPeerClosed, conn.Reason)
				assert.Equal(t, "CLOSE_WAIT", conn.SocketState)
				assert.Equal(t, fetchLine, conn.Site().Line, "the connection is named by the body's line")
				require.NotNil(t, conn.HeldBy)
				assert.Equal(t, body.ID, conn.HeldBy.ID)
				assert.Contains(t, conn.String(), "  dialed by:\n")
			} else {
				// HTTP/2: net/http's frame reader sees the server's close and
				// closes the connection itself, body open or not, so the
				// connection is no leak; the body is. Time enough for the
				// server's idle close and the grace period to pass first.
				time.Sleep(200 * time.Millisecond)
				tr.Poll()
				for _, l := range log.all() {
					assert.NotEqual(t, tracker.KindConn, l.Kind, "an HTTP/2 connection the server closed: %s", l)
				}
			}
		})
	}
}

// These are not leaks: a body closed unread, a body read to its end and
// never closed, idle keep-alive connections, and a streaming response still
// being read.
func TestHealthyUseIsNotReported(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2 over TLS"}[secure], func(t *testing.T) {
			tr, log := newTracker(t)
			srv := server(t, secure)
			c := client(t, tr, srv)

			resp, err := c.Get(srv.URL + "/ok")
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close()) // unread

			resp, err = c.Get(srv.URL + "/ok")
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body) // to the end, never closed
			require.NoError(t, err)
			assert.Equal(t, "ok", string(b))

			resp, err = c.Get(srv.URL + "/stream")
			require.NoError(t, err)
			if secure {
				assert.Equal(t, 2, resp.ProtoMajor, "HTTP/2 kept")
			}
			n, err := io.Copy(io.Discard, resp.Body) // ~320 ms, past the grace
			require.NoError(t, err)
			assert.NotZero(t, n)
			require.NoError(t, resp.Body.Close())

			time.Sleep(150 * time.Millisecond) // idle connections closed by the server, or kept
			tr.Poll()
			for _, l := range log.all() {
				t.Errorf("reported: %s", l)
			}
			for _, r := range tr.Open() {
				assert.NotEqual(t, nethttp.KindBody, r.Kind, "a body still tracked: %s", r)
			}
		})
	}
}

// A body dropped without Close is reported as collected, with its line,
// and its connection goes on being reported under that line.
func TestDroppedBodyIsCollected(t *testing.T) {
	tr, log := newTracker(t)
	srv := server(t, false)
	c := client(t, tr, srv)
	require.Error(t, fetch(t.Context(), c, srv.URL+"/fail"))
	var got tracker.Leak
	deadline := time.Now().Add(5 * time.Second)
	for got.ID == 0 && time.Now().Before(deadline) {
		runtime.GC()
		tr.Poll()
		for _, l := range log.all() {
			if l.Kind == nethttp.KindBody && l.Reason == tracker.ReasonCollected {
				got = l
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NotZero(t, got.ID, "the dropped body was never reported collected")
	assert.Equal(t, fetchLine, got.Site().Line)

	// Its connection, which net/http's read loop keeps waiting for the
	// dropped body, is still reported under fetch's line once the server
	// has closed it for idleness.
	var conn tracker.Leak
	deadline = time.Now().Add(5 * time.Second)
	for conn.ID == 0 && time.Now().Before(deadline) {
		tr.Poll()
		for _, l := range log.all() {
			if l.Kind == tracker.KindConn {
				conn = l
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NotZero(t, conn.ID, "the connection of the dropped body was never reported")
	require.NotNil(t, conn.HeldBy, conn.String())
	assert.True(t, conn.HeldBy.Collected)
	assert.Equal(t, fetchLine, conn.Site().Line, conn.String())
	assert.Equal(t, "CLOSE_WAIT", conn.SocketState)
}

// The tracked connection sits under TLS, never around a *tls.Conn.
func TestDialingIsBelowTLS(t *testing.T) {
	tr, _ := newTracker(t)
	srv := server(t, true)
	c := client(t, tr, srv)
	resp, err := c.Get(srv.URL + "/ok")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.NotNil(t, resp.TLS)
	var conns int
	for _, r := range tr.Open() {
		if r.Kind == tracker.KindConn {
			conns++
			assert.Equal(t, srv.Listener.Addr().String(), r.RemoteAddr)
		}
	}
	assert.Equal(t, 1, conns)
}

// HTTP/2 stays as the base transport had it: net/http would turn it off
// for the custom dialer.
func TestHTTP2KeptAsTheBaseHadIt(t *testing.T) {
	tr, _ := newTracker(t)
	srv := server(t, true)
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	for _, tc := range []struct {
		name  string
		base  *http.Transport
		proto int
	}{
		{"forced", &http.Transport{TLSClientConfig: tlsConfig.Clone(), ForceAttemptHTTP2: true}, 2},
		{"custom TLS config, not forced: HTTP/1.1, as the base", &http.Transport{TLSClientConfig: tlsConfig.Clone()}, 1},
	} {
		c := &http.Client{Transport: nethttp.NewTransport(tc.base, nethttp.WithTracker(tr))}
		resp, err := c.Get(srv.URL + "/ok")
		require.NoError(t, err, tc.name)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, tc.proto, resp.ProtoMajor, tc.name)
		c.CloseIdleConnections()
	}
}

// A base transport's own dialer still dials, under the tracker: the newer
// DialContext, or the deprecated Dial that net/http would ignore once a
// DialContext is set.
func TestBaseDialerStillDials(t *testing.T) {
	srv := server(t, false)
	var dials atomic.Int32
	dialer := &net.Dialer{}
	for name, base := range map[string]*http.Transport{
		"DialContext": {DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		}},
		"Dial": {Dial: func(network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.Dial(network, addr)
		}},
	} {
		dials.Store(0)
		tr, _ := newTracker(t)
		c := &http.Client{Transport: nethttp.NewTransport(base, nethttp.WithTracker(tr))}
		resp, err := c.Get(srv.URL + "/ok")
		require.NoError(t, err, name)
		assert.Equal(t, int32(1), dials.Load(), name)
		var conns int
		for _, r := range tr.Open() {
			if r.Kind == tracker.KindConn {
				conns++
			}
		}
		assert.Equal(t, 1, conns, "%s: the connection is tracked", name)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
	}
}

// The client's CloseIdleConnections reaches the transport under the
// tracked one: its idle connections are closed, and no longer tracked.
func TestCloseIdleConnectionsReachesTheBase(t *testing.T) {
	for _, wrap := range []string{"NewTransport", "WrapClient of another RoundTripper"} {
		t.Run(wrap, func(t *testing.T) {
			tr, _ := newTracker(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
			t.Cleanup(srv.Close)
			base := &http.Transport{DialContext: tr.WrapDialer(nil)}
			var c *http.Client
			if wrap == "NewTransport" {
				c = &http.Client{Transport: nethttp.NewTransport(base, nethttp.WithTracker(tr))}
			} else {
				c = nethttp.WrapClient(&http.Client{Transport: roundTripperOnly{base}}, nethttp.WithTracker(tr))
			}
			resp, err := c.Get(srv.URL)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Len(t, openOf(tr, tracker.KindConn), 1, "one idle connection")
			c.CloseIdleConnections()
			assert.Empty(t, openOf(tr, tracker.KindConn), "closed")
		})
	}
}

// roundTripperOnly hides everything of its transport but RoundTrip and
// CloseIdleConnections.
type roundTripperOnly struct{ t *http.Transport }

func (r roundTripperOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.t.RoundTrip(req)
}
func (r roundTripperOnly) CloseIdleConnections() { r.t.CloseIdleConnections() }

// The body of a 101 Switching Protocols response is the upgraded
// connection, which the program writes to as well as reads: the tracked
// body keeps its io.Writer, and is tracked, holding its connection, until
// its Close.
func TestUpgradedBodyKeepsItsWriter(t *testing.T) {
	tr, log := newTracker(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // echoes until the client closes
	}))
	t.Cleanup(srv.Close)
	c := client(t, tr, srv)

	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/echo", nil)
	require.NoError(t, err)
	req.Header.Set("Upgrade", "echo")
	req.Header.Set("Connection", "Upgrade")
	resp, err := c.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	rw, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "the upgraded body is writable: %T", resp.Body)
	_, err = io.WriteString(rw, "ping")
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(rw, got)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(got))

	bodies := openOf(tr, nethttp.KindBody)
	require.Len(t, bodies, 1, "tracked while the program uses it")
	conns := openOf(tr, tracker.KindConn)
	require.Len(t, conns, 1)
	require.NotNil(t, conns[0].HeldBy, "its connection is held by the body")
	assert.Equal(t, bodies[0].ID, conns[0].HeldBy.ID)

	require.NoError(t, rw.Close())
	assert.Empty(t, openOf(tr, nethttp.KindBody))
	assert.True(t, settle(tr, tracker.KindConn), "the upgraded connection ends with the body's Close")
	assert.Empty(t, log.all())
}
