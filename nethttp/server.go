package nethttp

import (
	"context"
	"net"
	"net/http"

	"github.com/connleak/connleak/tracker"
)

// KindHijacked is the kind of the handler's hold on a connection hijacked
// from an http.Server (see WrapServer).
const KindHijacked tracker.Kind = "http.hijacked"

// Listen announces on the local network address, as net.Listen does, and
// returns the listener tracked: every connection it accepts is tracked until
// its Close. Serve a server made ready by WrapServer on it, with the same
// tracker in WithTracker.
func Listen(network, addr string, opts ...Option) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return newConfig(opts).tracker.WrapListener(ln), nil
}

// WrapServer installs tracking on srv, in place, and returns srv. Serve it
// on a listener that the same tracker wraps (Listen, or
// tracker.WrapListener, which is how to track an httptest.Server: wrap its
// Listener before Start), so that every connection it accepts is tracked;
// srv.ListenAndServe makes a listener of its own, which is not.
//
// WrapServer sets two hooks of srv, each still calling the one srv had:
//
//   - ConnState: a connection hijacked from srv (http.Hijacker, or
//     http.ResponseController's Hijack) is owned from then on by a KindHijacked
//     resource tracked from the line that called Hijack, until the
//     connection's own Close (see tracker.Handle.Own). net/http forgets a
//     hijacked connection; a handler that forgets it too leaves it in
//     CLOSE_WAIT once the client has gone, and the report leads with that
//     line. When Middleware serves the request that hijacks, inside a
//     tracing handler, the hold takes that request's span.
//   - ConnContext: the context of every request carries its connection, so
//     that Middleware can link the request to it.
//
// The handler and the ResponseWriter are left as they are: http.Flusher,
// http.Hijacker, http.ResponseController and every other interface of
// net/http's own ResponseWriter keep working, and WrapServer adds nothing
// to a request but its ConnState hook. A hijacked connection is the very
// net.Conn net/http returns (a *tls.Conn over TLS), with its
// bufio.ReadWriter; net/http supports Hijack over HTTP/1 only.
//
// Idle and active keep-alive connections are not leaks, and are not
// reported: net/http closes an idle connection as soon as its client does,
// and a client still reading a long response has not gone. A connection
// whose client has gone while its handler, still running, keeps it open
// past the grace period is reported; Middleware names that handler.
//
// Set srv's ConnState and ConnContext before WrapServer, and call it once,
// before srv serves. WrapServer panics if srv is nil.
func WrapServer(srv *http.Server, opts ...Option) *http.Server {
	if srv == nil {
		panic("connleak/nethttp: WrapServer of a nil *http.Server")
	}
	tr := newConfig(opts).tracker
	connState := srv.ConnState
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateHijacked {
			trackHijacked(tr, c)
		}
		if connState != nil {
			connState(c, state)
		}
	}
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			if ctx = connContext(ctx, c); ctx == nil {
				return nil // for net/http's own panic, which names ConnContext
			}
		}
		return context.WithValue(ctx, connKey{}, c)
	}
	return srv
}

// connKey is the context key of a request's connection.
type connKey struct{}

// trackHijacked gives c, just hijacked, an owner tracked from the line that
// called Hijack: net/http runs the ConnState hook inside Hijack, on the
// hijacking goroutine, so that line is on this stack.
func trackHijacked(tr *tracker.Tracker, c net.Conn) {
	h := tr.Track(KindHijacked, hijackSpan(c))
	if !h.Own(c) {
		h.Close() // a connection tr does not track: nothing to follow
	}
}
