package nethttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/connleak/connleak/tracker"
)

// KindBody is the kind of a tracked response body.
const KindBody tracker.Kind = "http.body"

// NewTransport returns a RoundTripper that makes its requests through a
// clone of base (a clone of http.DefaultTransport when base is nil), with
// two additions:
//
//   - its connections are dialed through the tracker, below TLS: the
//     tracked connection sits under each *tls.Conn;
//   - every response body is tracked from the line that called Do, Get or
//     Post (the frames of net/http and connleak are skipped) until its
//     Close, or until it is read to the end; while it is open, the
//     connection it is read from is held by it (see tracker.Handle.Hold).
//     Over HTTP/2, where one connection carries many bodies, the latest
//     body to arrive on it holds it.
//
// A body remembers the span active in its request's context, which its
// leak span links to. The transport's connections are counted by the
// metric http.client.open_connections (see the package doc).
//
// HTTP/2 stays on wherever base had it: net/http turns it off for a
// transport with a custom dialer, so the clone attempts HTTP/2 when base
// would have. A dialer of base's own (DialContext, or the older Dial) still
// dials, under the tracker's wrapper. DialTLSContext and DialTLS, which
// net/http uses instead for https, are left as they are: the connections
// they make are not tracked, though their bodies are.
func NewTransport(base *http.Transport, opts ...Option) http.RoundTripper {
	cfg := newConfig(opts)
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	h2 := attemptsHTTP2(base)
	t := base.Clone()
	var dial tracker.DialFunc
	switch {
	case base.DialContext != nil:
		dial = base.DialContext
	case base.Dial != nil: //lint:ignore SA1019 a base that still sets Dial keeps dialing with it
		dial = func(_ context.Context, network, addr string) (net.Conn, error) {
			return base.Dial(network, addr) //lint:ignore SA1019 as above
		}
	}
	t.DialContext = httpDialer(cfg.tracker.WrapDialer(dial))
	observeClientConns(cfg.tracker)
	if h2 {
		t.ForceAttemptHTTP2 = true
	}
	return newRoundTripper(t, cfg.tracker, true)
}

// attemptsHTTP2 reports whether net/http attempts HTTP/2 on t as it is
// configured, before a dialer is added to it.
func attemptsHTTP2(t *http.Transport) bool {
	switch {
	case t.Protocols != nil:
		return t.Protocols.HTTP2() // explicit: the clone keeps it
	case t.TLSNextProto != nil:
		_, ok := t.TLSNextProto["h2"]
		return ok
	case t.ForceAttemptHTTP2:
		return true
	case t.TLSClientConfig != nil && slices.Contains(t.TLSClientConfig.NextProtos, "h2"):
		return true // net/http configured HTTP/2 on it already, in a first request
	//lint:ignore SA1019 net/http's own rule reads the deprecated dialers too
	case t.TLSClientConfig != nil || t.Dial != nil || t.DialContext != nil || t.DialTLS != nil || t.DialTLSContext != nil:
		return false
	}
	return true
}

// WrapClient returns a copy of c whose requests go through NewTransport:
// c's transport when it is an *http.Transport (http.DefaultTransport when
// it is nil). Any other RoundTripper is kept and only its response bodies
// are tracked, since the tracker cannot reach its dialer. A nil c means
// http.DefaultClient.
func WrapClient(c *http.Client, opts ...Option) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	out := *c
	switch base := c.Transport.(type) {
	case nil:
		out.Transport = NewTransport(nil, opts...)
	case *http.Transport:
		out.Transport = NewTransport(base, opts...)
	default:
		out.Transport = newRoundTripper(base, newConfig(opts).tracker, false)
	}
	return &out
}

func newRoundTripper(base http.RoundTripper, tr *tracker.Tracker, reuseTraces bool) *roundTripper {
	return &roundTripper{base: base, reuseTraces: reuseTraces, bodies: rearmed{tr: tr, kind: KindBody}}
}

// roundTripper tracks the bodies of the responses base returns.
type roundTripper struct {
	base http.RoundTripper
	// reuseTraces: base is net/http's Transport, which calls GotConn only
	// within RoundTrip (see gotConn); another RoundTripper might call it
	// later, into a gotConn reused by another request.
	reuseTraces bool
	labels      latestLabel
	bodies      rearmed // KindBody
}

// latestLabel keeps the label option of the latest request, because a
// client mostly calls one URL again and again, and a server mostly serves a
// few paths: the option is then made once, not built and boxed on every
// request.
type latestLabel struct {
	last atomic.Pointer[requestLabel]
	// max bounds the label's length, 0 for none: a server's request path
	// is its client's to choose.
	max int
}

type requestLabel struct {
	method, scheme, host, path string
	opt                        tracker.TrackOption
}

// option is the label option of req (see label).
func (l *latestLabel) option(req *http.Request) tracker.TrackOption {
	u := req.URL
	if u == nil {
		return tracker.TrackLabel(req.Method)
	}
	path := u.EscapedPath()
	if last := l.last.Load(); last != nil && last.method == req.Method && last.scheme == u.Scheme && last.host == u.Host && last.path == path {
		return last.opt
	}
	lbl := label(req)
	if l.max > 0 {
		lbl = clip(lbl, l.max)
	}
	last := &requestLabel{method: req.Method, scheme: u.Scheme, host: u.Host, path: path, opt: tracker.TrackLabel(lbl)}
	l.last.Store(last)
	return last.opt
}

// gotConn remembers the connection a request was sent on, with the trace
// that fills it in one allocation. The trace may outlive the request in
// net/http's read loop, so it must not reach the body's Handle: that would
// keep a dropped body from being collected, and reported.
//
// A request that got its response from net/http's Transport is done with
// its gotConn: the Transport calls GotConn before it writes the request,
// over HTTP/1 and HTTP/2, and retries within RoundTrip, so the gotConn goes
// back to gotConns, emptied, for a later request.
type gotConn struct {
	mu    sync.Mutex
	conn  net.Conn
	trace httptrace.ClientTrace
	// bg is context.Background with trace, made once for the requests
	// that carry no context of their own (http.Get, Client.Get, Post).
	bg context.Context
}

var gotConns sync.Pool

func (g *gotConn) set(info httptrace.GotConnInfo) {
	g.mu.Lock()
	g.conn = info.Conn
	g.mu.Unlock()
}

// take returns the connection GotConn reported, and forgets it, so that
// the gotConn is empty for its next request.
func (g *gotConn) take() net.Conn {
	g.mu.Lock()
	c := g.conn
	g.conn = nil
	g.mu.Unlock()
	return c
}

// RoundTrip sends req through the base transport and tracks the body of
// its response.
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var got *gotConn
	if rt.reuseTraces {
		got, _ = gotConns.Get().(*gotConn)
	}
	if got == nil {
		got = new(gotConn)
		got.trace.GotConn = got.set
	}
	ctx := req.Context()
	var span tracker.TrackOption // none in context.Background
	if ctx == context.Background() {
		if got.bg == nil {
			got.bg = httptrace.WithClientTrace(ctx, &got.trace)
		}
		ctx = got.bg
	} else {
		span = tracker.TrackContext(ctx)
		ctx = httptrace.WithClientTrace(ctx, &got.trace)
	}
	resp, err := rt.base.RoundTrip(req.WithContext(ctx))
	if err != nil || resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		// Not reused: a failed request's stream may still be on its way to
		// its connection, and call GotConn later.
		return resp, err
	}
	c := got.take()
	if rt.reuseTraces {
		gotConns.Put(got)
	}
	h := rt.bodies.track(rt.labels.option(req), span)
	if c != nil {
		h.Hold(c)
	}
	// A copy of the response carries the tracked body: net/http's read
	// loop keeps its own *Response while it waits for the body, and through
	// it would keep the Handle of a body the program dropped reachable, so
	// that it is never reported collected. The copy and the body are one
	// allocation.
	out := &trackedResponse{Response: *resp, body: body{rc: resp.Body, h: h, rt: rt}}
	out.Body = &out.body
	if w, ok := resp.Body.(io.Writer); ok {
		out.Body = &rwBody{body: &out.body, w: w}
	}
	// The caller's request, not the traced copy, as net/http's own
	// RoundTrippers return it.
	out.Request = req
	return &out.Response, nil
}

// trackedResponse is the response RoundTrip returns, with its body.
type trackedResponse struct {
	http.Response
	body body
}

// rearmed hands out the Handles of one kind of resource, re-arming those
// that ended (see tracker.Handle.Reopen): a client that tracks a body at
// each response, or a server a request, then needs no new record, Handle
// or collection watch, which cost several times more than the rest of the
// tracking, cold between two requests.
type rearmed struct {
	tr    *tracker.Tracker
	kind  tracker.Kind
	ended sync.Pool // closed Handles, for track to re-arm
}

// track starts tracking a resource opened at its caller's line.
func (p *rearmed) track(opts ...tracker.TrackOption) *tracker.Handle {
	if h, ok := p.ended.Get().(*tracker.Handle); ok {
		return h.Reopen(opts...)
	}
	return p.tr.Track(p.kind, opts...)
}

// end closes h, which its caller lets go of, for a later track to re-arm.
func (p *rearmed) end(h *tracker.Handle) {
	h.Close()
	p.ended.Put(h)
}

// label is "GET https://example.com/path" for a client's request, and
// "GET /path" for a request a server received: the method and the URL
// without its user, password, query or fragment, which may carry
// credentials.
func label(req *http.Request) string {
	u := req.URL
	switch {
	case u == nil:
		return req.Method
	case u.Scheme == "":
		return req.Method + " " + u.Host + u.EscapedPath()
	}
	return req.Method + " " + u.Scheme + "://" + u.Host + u.EscapedPath()
}

// body is a tracked response body.
type body struct {
	rc    io.ReadCloser
	h     *tracker.Handle // the body's alone until it ends, then nil
	rt    *roundTripper
	ended atomic.Bool
}

// rwBody keeps the io.Writer of a 101 Switching Protocols response's body.
type rwBody struct {
	*body
	w io.Writer
}

func (b *rwBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// Read reads the body. At its end the body stops being tracked: net/http
// puts the connection back in its pool then, Close or not.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done()
	}
	return n, err
}

// Close ends tracking, then closes the body and returns what its Close
// returns.
func (b *body) Close() error {
	b.done()
	return b.rc.Close()
}

// done ends the body's tracking once, and hands its Handle on for a later
// body to re-arm. Only the Handle is reused, never the body: a program may
// Close a body twice, and the second Close must reach no other body. The
// body lets go of its Handle, so that one it keeps after its end does not
// keep reachable a Handle that another body, dropped, would be reported
// collected by.
func (b *body) done() {
	if b.ended.CompareAndSwap(false, true) {
		h := b.h
		b.h = nil
		b.rt.bodies.end(h)
	}
}

// CloseIdleConnections closes the idle connections of the base transport,
// when it has such a method, as http.Client.CloseIdleConnections expects of
// a RoundTripper.
func (rt *roundTripper) CloseIdleConnections() {
	if c, ok := rt.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
