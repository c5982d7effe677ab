package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// The server-side benchmarks serve the same handler from a plain loopback
// server and from one made ready by WrapServer on a tracked listener (and,
// for BenchmarkServerMiddleware, with Middleware too), to plain clients,
// interleaved (see interleave); they report raw-ns/op, tracked-ns/op and
// their ratio.
//
//	go test -run '^$' -bench Server -count 6 ./nethttp

// benchServers starts the plain server and the tracked one, and returns a
// GET of each through a client of its own made by client.
func benchServers(b *testing.B, middleware bool, client func() *http.Client) (raw, tracked func()) {
	b.Helper()
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello, server")
	})
	plain := httptest.NewServer(handler)
	b.Cleanup(plain.Close)

	tr := tracker.New(tracker.WithLogger(nil))
	b.Cleanup(func() { tr.Close() })
	var h http.Handler = handler
	if middleware {
		h = nethttp.Middleware(handler, nethttp.WithTracker(tr))
	}
	wrapped := httptest.NewUnstartedServer(h)
	wrapped.Listener = tr.WrapListener(wrapped.Listener)
	nethttp.WrapServer(wrapped.Config, nethttp.WithTracker(tr))
	wrapped.Start()
	b.Cleanup(wrapped.Close)

	get := func(srv *httptest.Server) func() {
		c := client()
		b.Cleanup(c.CloseIdleConnections)
		return func() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	raw, tracked = get(plain), get(wrapped)
	raw() // the keep-alive connections, dialed once
	tracked()
	return raw, tracked
}

// BenchmarkServerKeepAlive: a keep-alive GET loop.
func BenchmarkServerKeepAlive(b *testing.B) {
	raw, tracked := benchServers(b, false, func() *http.Client {
		return &http.Client{Transport: &http.Transport{}}
	})
	b.ReportAllocs()
	interleave(b, []string{"raw", "tracked"}, []func(){raw, tracked})
}

// BenchmarkServerConnPerRequest: a GET loop on a new connection each time,
// which the tracked server accepts, tracks and closes.
func BenchmarkServerConnPerRequest(b *testing.B) {
	raw, tracked := benchServers(b, false, func() *http.Client {
		return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	})
	b.ReportAllocs()
	interleave(b, []string{"raw", "tracked"}, []func(){raw, tracked})
}

// BenchmarkServerMiddleware: the keep-alive GET loop with Middleware on the
// tracked server, which tracks each request and links it to its
// connection.
func BenchmarkServerMiddleware(b *testing.B) {
	raw, tracked := benchServers(b, true, func() *http.Client {
		return &http.Client{Transport: &http.Transport{}}
	})
	b.ReportAllocs()
	interleave(b, []string{"raw", "tracked"}, []func(){raw, tracked})
}

// BenchmarkConcurrentRequests runs GETs from four goroutines a core at
// once, through NewTransport to a server with WrapServer and Middleware on
// one tracker (tracked), or through plain ones (raw): the client's bodies
// and the server's requests are re-armed on every core at the same time.
//
//	go test -run '^$' -bench ConcurrentRequests -count 6 ./nethttp
func BenchmarkConcurrentRequests(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello, server")
	})
	for _, tracked := range []bool{false, true} {
		name := "raw"
		if tracked {
			name = "tracked"
		}
		b.Run(name, func(b *testing.B) {
			base := &http.Transport{MaxIdleConnsPerHost: 64}
			var rt http.RoundTripper = base
			srv := httptest.NewUnstartedServer(handler)
			if tracked {
				tr := tracker.New(tracker.WithLogger(nil))
				defer tr.Close()
				srv.Config.Handler = nethttp.Middleware(handler, nethttp.WithTracker(tr))
				srv.Listener = tr.WrapListener(srv.Listener)
				nethttp.WrapServer(srv.Config, nethttp.WithTracker(tr))
				rt = nethttp.NewTransport(base, nethttp.WithTracker(tr))
			}
			srv.Start()
			defer srv.Close()
			c := &http.Client{Transport: rt}
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
