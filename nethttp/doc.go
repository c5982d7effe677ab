// Package nethttp tracks net/http clients and servers with a connleak
// tracker, so that a connection left open is reported with the line of
// the program that owns it, though net/http dials, accepts and reads on
// goroutines of its own.
//
// # Clients
//
// NewTransport and WrapClient track the response bodies of a client, and
// the connections they are read from: a body left open on an error path is
// reported with the line that called Do, Get or Post, and its connection,
// stuck in CLOSE_WAIT under net/http's read loop, is reported under that
// same line instead of net/http's own dial.
//
//	tr := tracker.New()
//	client := nethttp.WrapClient(http.DefaultClient, nethttp.WithTracker(tr))
//	resp, err := client.Get(url) // a body never closed is reported at this line
//
// A body is tracked from the RoundTrip that returned it to its Close. Read
// to the end without Close, it is not a leak: net/http has already put its
// connection back in the pool. Dropped without Close, it is reported as
// garbage-collected; held longer than a limit set with
// tracker.WithHoldLimit(nethttp.KindBody, d), as held too long.
//
// # Servers
//
// A server tracked by connleak serves on a tracked listener (Listen, or
// tracker.WrapListener) and is made ready by WrapServer; Middleware tracks
// its requests in flight.
//
//	ln, err := nethttp.Listen("tcp", ":8080", nethttp.WithTracker(tr))
//	srv := nethttp.WrapServer(&http.Server{
//		Handler: nethttp.Middleware(mux, nethttp.WithTracker(tr)),
//	}, nethttp.WithTracker(tr))
//	err = srv.Serve(ln)
//
// Every accepted connection is tracked until its Close. net/http closes its
// own connections, idle or active, as soon as their clients do, so those
// are not reported; two kinds of connection escape it, and each is
// reported with its line:
//
//   - A hijacked connection (a websocket, a protocol of its own) belongs to
//     the handler from then on: WrapServer tracks it from the line that
//     called Hijack until its own Close, and a handler that forgets it on
//     an error path leaves it in CLOSE_WAIT once its client has gone.
//   - A handler that blocks (on an upstream, a lock, a channel) keeps its
//     connection open after its client has gone: over HTTP/1 net/http
//     closes it only when the handler returns. Middleware links each
//     request to its connection, and past the grace period the connection
//     is reported with the handler's line.
//
// An httptest.Server is tracked by wrapping its Listener before Start:
//
//	ts := httptest.NewUnstartedServer(handler)
//	ts.Listener = tr.WrapListener(ts.Listener)
//	nethttp.WrapServer(ts.Config, nethttp.WithTracker(tr))
//	ts.Start()
//
// Neither WrapServer nor Middleware wraps the ResponseWriter: handlers keep
// net/http's own, with http.Flusher, http.Hijacker and everything
// http.ResponseController reaches.
//
// # OpenTelemetry
//
// nethttp reports through the tracker given by WithTracker, to the
// providers of its tracker.WithTracerProvider and
// tracker.WithMeterProvider, and adds what only an HTTP integration knows:
//
//   - Each body, request in flight (Middleware) and hijack (WrapServer)
//     remembers the span active in its request's context, so that its
//     tracker.SpanLeak span, and that of the connection it holds, links to
//     the request that opened it: a client's span started around Do, or a
//     server's span when Middleware runs inside the tracing handler (for
//     example otelhttp.NewHandler(nethttp.Middleware(mux))). Only the span's
//     context is kept; an untraced request pays one context lookup.
//   - A client's connections carry network.protocol.name "http" and the
//     server.address and server.port of the request's URL, in their leak
//     spans, instead of the peer's IP alone.
//   - The metric http.client.open_connections of the semantic conventions,
//     in the scope ScopeName: the tracker's client connections by
//     http.connection.state ("active" while a response body is read from
//     one, else "idle"), server.address and server.port, observed when the
//     metric is collected, at no cost to requests.
//
// # Debug page
//
// DebugHandler serves a tracker's state as a page in the manner of
// net/http/pprof (text, JSON and HTML): health, leaks and open resources
// grouped by open site, and the process's sockets no wrapper saw. Nothing
// mounts it by itself; serve it on a loopback listener or behind
// authentication.
package nethttp
