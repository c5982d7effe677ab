package nethttp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockedHandler waits for release (or ten seconds) and never looks at its
// request's context: a client that leaves is not noticed, and its
// connection stays open under the handler.
func blockedHandler(started chan<- struct{}, release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { // the blocked handler
		started <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "late")
	}
}

// getInFlight starts a GET of url and returns a function that makes the
// client leave: it cancels the request, whose connection net/http closes.
func getInFlight(t *testing.T, c *http.Client, url string) (leave func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

// A handler still blocked after its client has gone keeps the connection
// in CLOSE_WAIT; past the grace period it is reported with the handler's
// line, whether Middleware wraps the handler or the ServeMux that routes to
// it.
func TestMiddlewareReportsBlockedHandler(t *testing.T) {
	handlerLine := lineOf(t, "// the blocked handler")
	for _, p := range []proto{http1, http1TLS} {
		for _, viaMux := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/mux=%v", p.name, viaMux), func(t *testing.T) {
				tr, log := newTracker(t)
				started, release := make(chan struct{}, 1), make(chan struct{})
				var next http.Handler = blockedHandler(started, release)
				if viaMux {
					mux := http.NewServeMux()
					mux.Handle("GET /slow", next)
					next = mux
				}
				ts := trackedServer(t, tr, nethttp.Middleware(next, nethttp.WithTracker(tr)), p, nil)
				unblock := sync.OnceFunc(func() { close(release) })
				t.Cleanup(unblock) // before the server's Close, which waits for its handlers
				leave := getInFlight(t, plainClient(t, ts, p), ts.URL+"/slow")
				<-started
				leave()

				l := waitLeak(t, log, tracker.KindConn)
				assert.Equal(t, tracker.ReasonPeerClosed, l.Reason)
				// The closure's name depends on where the compiler inlined
				// blockedHandler; its line does not.
				assert.Contains(t, l.Site().Function, "blockedHandler", l.String())
				assert.True(t, strings.HasSuffix(l.Site().File, "nethttp/middleware_test.go"), l.Site().File)
				assert.Equal(t, handlerLine, l.Site().Line, l.String())
				require.NotNil(t, l.HeldBy)
				assert.Equal(t, nethttp.KindRequest, l.HeldBy.Kind)
				assert.Equal(t, "GET /slow", l.HeldBy.Label)
				assert.Contains(t, l.String(), `held by http.request "GET /slow"`)

				unblock() // the handler returns; net/http closes the connection
				assert.True(t, settle(tr, tracker.KindConn), "still open: %v", tr.Open())
				assert.Empty(t, openOf(tr, nethttp.KindRequest))
				assert.Len(t, log.all(), 1, "one report: %v", log.all())
			})
		}
	}
}

// Requests whose clients stay are not reported: a quick one, and a
// streaming response read for several grace periods.
func TestMiddlewareHealthyRequestsAreNotReported(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			tr, log := newTracker(t)
			mux := http.NewServeMux()
			mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
			mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
				for i := range 8 {
					fmt.Fprintf(w, "chunk %d\n", i)
					w.(http.Flusher).Flush()
					time.Sleep(40 * time.Millisecond)
				}
			})
			ts := trackedServer(t, tr, nethttp.Middleware(mux, nethttp.WithTracker(tr)), p, nil)
			c := plainClient(t, ts, p)
			for _, path := range []string{"/ok", "/stream", "/ok"} {
				resp, err := c.Get(ts.URL + path)
				require.NoError(t, err)
				assert.Equal(t, p.major(), resp.ProtoMajor)
				b, err := io.ReadAll(resp.Body) // /stream: ~320 ms, six grace periods
				require.NoError(t, err)
				assert.NotEmpty(t, b)
				resp.Body.Close()
			}
			tr.Poll()
			assert.Empty(t, log.all())
			assert.Empty(t, openOf(tr, nethttp.KindRequest), "requests end with their handlers")
			c.CloseIdleConnections()
			assert.True(t, settle(tr, tracker.KindConn))
			assert.Empty(t, log.all())
		})
	}
}

// Over HTTP/2 a client that leaves resets its stream and keeps its
// connection: no socket is stuck, nothing is reported, and the request,
// tracked while its handler runs, holds no connection.
func TestMiddlewareOverHTTP2HoldsNoConnection(t *testing.T) {
	tr, log := newTracker(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	ts := trackedServer(t, tr, nethttp.Middleware(blockedHandler(started, release), nethttp.WithTracker(tr)), http2TLS, nil)
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	leave := getInFlight(t, plainClient(t, ts, http2TLS), ts.URL+"/slow")
	<-started
	requests := openOf(tr, nethttp.KindRequest)
	require.Len(t, requests, 1)
	assert.Equal(t, "GET /slow", requests[0].Label)
	leave()
	time.Sleep(150 * time.Millisecond) // three grace periods
	tr.Poll()
	assert.Empty(t, log.all())
	for _, r := range openOf(tr, tracker.KindConn) {
		assert.Nil(t, r.HeldBy, "held: %s", r)
	}
	unblock()
	assert.True(t, settle(tr, nethttp.KindRequest))
}

// Without WrapServer the request holds no connection, and a hold limit on
// KindRequest still reports a request in flight for too long, with its
// handler's line.
func TestMiddlewareHoldLimitWithoutWrapServer(t *testing.T) {
	tr, log := newTracker(t, tracker.WithHoldLimit(nethttp.KindRequest, 30*time.Millisecond))
	started, release := make(chan struct{}, 1), make(chan struct{})
	ts := httptest.NewServer(nethttp.Middleware(blockedHandler(started, release), nethttp.WithTracker(tr)))
	defer ts.Close()
	defer close(release)
	leave := getInFlight(t, ts.Client(), ts.URL+"/slow")
	defer leave()
	<-started
	l := waitLeak(t, log, nethttp.KindRequest)
	assert.Equal(t, tracker.ReasonHeldTooLong, l.Reason)
	assert.Equal(t, lineOf(t, "// the blocked handler"), l.Site().Line)
	assert.Equal(t, "GET /slow", l.Label)
}

// probe, reached through a request's context, reports the Site of the one
// request in flight.
type probe struct {
	tr   *tracker.Tracker
	site chan tracker.Site
}

type probeKey struct{}

func see(r *http.Request) {
	p := r.Context().Value(probeKey{}).(*probe)
	var site tracker.Site
	for _, res := range p.tr.Open() {
		if res.Kind == nethttp.KindRequest {
			site = res.Site()
		}
	}
	p.site <- site
}

func seeingFunc(_ http.ResponseWriter, r *http.Request) { see(r) } // seeingFunc

type valueHandler struct{}

func (valueHandler) ServeHTTP(_ http.ResponseWriter, r *http.Request) { see(r) } // valueHandler

type pointerHandler struct{}

func (*pointerHandler) ServeHTTP(_ http.ResponseWriter, r *http.Request) { see(r) } // pointerHandler

type methods struct{}

func (methods) serve(_ http.ResponseWriter, r *http.Request) { see(r) }

// A request is named by its handler's function: an http.HandlerFunc's,
// the ServeHTTP method of a handler's type, or the handler a ServeMux
// routes to; when no line of the program serves it (a method value, whose
// function the compiler wrote, or a handler of net/http's), by the line
// that installed Middleware.
func TestMiddlewareNamesTheHandler(t *testing.T) {
	const pkg = "github.com/connleak/connleak/nethttp_test."
	mux := http.NewServeMux()
	mux.HandleFunc("/routed", seeingFunc)
	installLine := lineOf(t, "// the line that installs Middleware")
	for _, tc := range []struct {
		name     string
		next     http.Handler
		function string
		line     int
	}{
		{"HandlerFunc", http.HandlerFunc(seeingFunc), pkg + "seeingFunc", lineOf(t, "// seeingFunc")},
		{"value method", valueHandler{}, pkg + "valueHandler.ServeHTTP", lineOf(t, "// valueHandler")},
		{"value method through a pointer", &valueHandler{}, pkg + "valueHandler.ServeHTTP", lineOf(t, "// valueHandler")},
		{"pointer method", &pointerHandler{}, pkg + "(*pointerHandler).ServeHTTP", lineOf(t, "// pointerHandler")},
		{"ServeMux", mux, pkg + "seeingFunc", lineOf(t, "// seeingFunc")},
		{"method value", http.HandlerFunc(methods{}.serve), pkg + "TestMiddlewareNamesTheHandler", installLine},
		{"net/http's handler", http.StripPrefix("/x", http.HandlerFunc(seeingFunc)), pkg + "TestMiddlewareNamesTheHandler", installLine},
	} {
		tr, _ := newTracker(t)
		pr := &probe{tr: tr, site: make(chan tracker.Site, 1)}
		handler := nethttp.Middleware(tc.next, nethttp.WithTracker(tr)) // the line that installs Middleware
		ts := trackedServer(t, tr, handler, http1, func(srv *http.Server) {
			srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
				return context.WithValue(ctx, probeKey{}, pr)
			}
		})
		path := "/x/routed" // StripPrefix serves it; the others take any path
		if tc.next == mux {
			path = "/routed"
		}
		resp, err := ts.Client().Get(ts.URL + path)
		require.NoError(t, err, tc.name)
		resp.Body.Close()
		site := <-pr.site
		assert.Equal(t, tc.function, site.Function, tc.name)
		assert.Equal(t, tc.line, site.Line, tc.name)
		assert.True(t, strings.HasSuffix(site.File, "nethttp/middleware_test.go"), "%s: %s", tc.name, site.File)
	}
}

// A request routed by a ServeMux is labelled by its pattern, not by its
// path, which may carry identifiers or tokens; one no mux routed is
// labelled by its path, cut to a bound.
func TestMiddlewareLabelsByRoute(t *testing.T) {
	tr, _ := newTracker(t)
	labels := make(chan string, 2)
	see := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, r := range openOf(tr, nethttp.KindRequest) {
			labels <- r.Label
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/reset/{token}", see)
	routed := httptest.NewServer(nethttp.Middleware(mux, nethttp.WithTracker(tr)))
	defer routed.Close()
	bare := httptest.NewServer(nethttp.Middleware(see, nethttp.WithTracker(tr)))
	defer bare.Close()

	for _, url := range []string{routed.URL + "/reset/s3cret-token", bare.URL + "/" + strings.Repeat("x", 500)} {
		resp, err := http.Get(url)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	assert.Equal(t, "GET /reset/{token}", <-labels)
	long := <-labels
	assert.LessOrEqual(t, len(long), 128+len("…"))
	assert.True(t, strings.HasPrefix(long, "GET /xxx"), long)
}

// Middleware re-arms the Handle of a request that ended for a later one:
// each request is still a resource of its own, with its own id, label and
// handler, and none is left open once its response is sent.
func TestMiddlewareTracksEachRequestAfresh(t *testing.T) {
	tr, _ := newTracker(t)
	saw := make(chan []tracker.Resource, 1)
	look := func(http.ResponseWriter, *http.Request) { saw <- openOf(tr, nethttp.KindRequest) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a", func(w http.ResponseWriter, r *http.Request) { look(w, r) })      // route a
	mux.HandleFunc("GET /b/{id}", func(w http.ResponseWriter, r *http.Request) { look(w, r) }) // route b
	ts := httptest.NewServer(nethttp.Middleware(mux, nethttp.WithTracker(tr)))
	defer ts.Close()
	c := ts.Client() // keep-alive: one connection, one request at a time

	lines := map[string]int{"GET /a": lineOf(t, "// route a"), "GET /b/{id}": lineOf(t, "// route b")}
	ids := map[uint64]bool{}
	for _, path := range []string{"/a", "/b/1", "/a", "/b/2"} {
		resp, err := c.Get(ts.URL + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		open := <-saw
		require.Len(t, open, 1, path)
		r := open[0]
		want := "GET /a"
		if strings.HasPrefix(path, "/b/") {
			want = "GET /b/{id}"
		}
		assert.Equal(t, want, r.Label, path)
		assert.Equal(t, lines[want], r.Site().Line, "%s: %+v", path, r.Site())
		assert.False(t, ids[r.ID], "%s: id %d was an earlier request's", path, r.ID)
		ids[r.ID] = true
		assert.Empty(t, openOf(tr, nethttp.KindRequest), "%s: its request is still open after its response", path)
	}
}

// A request through Middleware allocates nothing of Middleware's own, once
// its route has been seen: its Handle is re-armed, and its stack and label
// options are made once for each handler and route. (It asks a ServeMux
// for the request's handler, a second lookup that costs what the mux's own
// costs: for a pattern that names no method, beside one that does, an
// allocation.)
func TestMiddlewareAllocatesNothingPerRequest(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled Handles at random")
	}
	tr, _ := newTracker(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/orders", func(http.ResponseWriter, *http.Request) {}) // any method: the label takes the request's
	for _, tc := range []struct {
		name string
		next http.Handler
		path string
	}{
		{"routed, the pattern names the method", mux, "/users"},
		{"routed, the request names the method", mux, "/orders"},
		{"no ServeMux", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "/anything"},
	} {
		mw := nethttp.Middleware(tc.next, nethttp.WithTracker(tr))
		req := httptest.NewRequest("GET", tc.path, nil)
		w := httptest.NewRecorder()
		allocs := func(serve func()) float64 {
			serve() // the route seen, a Handle ended for the next request
			return testing.AllocsPerRun(200, serve)
		}
		var lookup float64
		if tc.next == mux {
			lookup = allocs(func() { mux.Handler(req) })
		}
		added := allocs(func() { mw.ServeHTTP(w, req) }) - allocs(func() { tc.next.ServeHTTP(w, req) }) - lookup
		// Below one: a poll or a collection between two requests may send
		// one of them to a new Handle.
		assert.Less(t, added, 1.0, tc.name)
	}
}

// A route whose pattern names no method is labelled with the request's,
// whatever it is, each method apart.
func TestMiddlewareLabelsEachMethodOfARoute(t *testing.T) {
	tr, _ := newTracker(t)
	labels := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/cache/{key}", func(http.ResponseWriter, *http.Request) {
		for _, r := range openOf(tr, nethttp.KindRequest) {
			labels <- r.Label
		}
	})
	mw := nethttp.Middleware(mux, nethttp.WithTracker(tr))
	for _, method := range []string{"GET", "PURGE", "GET", "DELETE", "PURGE"} {
		mw.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/cache/k1", nil))
		assert.Equal(t, method+" /cache/{key}", <-labels)
	}
}
