package nethttp

import (
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/tracker"
)

// KindRequest is the kind of a request in flight through Middleware.
const KindRequest tracker.Kind = "http.request"

// Middleware returns a handler that serves every request with next (with
// http.DefaultServeMux when next is nil) and tracks it, as KindRequest
// labelled with its method and path, while next runs.
//
// Over HTTP/1 the request holds its connection (see tracker.Handle.Hold),
// when the server was made ready by WrapServer and serves on a tracked
// listener. A client that goes away while its handler still runs leaves
// the connection in CLOSE_WAIT: net/http closes it only when the handler
// returns. A handler blocked on something that never comes (an upstream, a
// lock, a channel) keeps that socket for as long as it blocks, and past
// the grace period the connection is reported with the handler's line. A
// request whose client is still there, reading a long streaming response
// or waiting for a slow one, is not reported; nor is one whose handler
// returns within the grace period.
//
// A request's open-site stack is its handler's function on top of the
// stack that called Middleware: the report names the handler, or, when
// the handler belongs to net/http or another library (a file server, a
// redirect), the line that installed Middleware. The handler is next
// itself, or for a *http.ServeMux the handler its patterns route the
// request to; a next that wraps the handler in a middleware of its own is
// named by that middleware's function, so install Middleware nearest the
// handler, or around the ServeMux.
//
// A request takes the span active in its context, the server span of a
// tracing handler that Middleware runs inside, and its leak span links to
// it; so does a hijack of the request (see WrapServer).
//
// Over HTTP/2 net/http closes a connection as soon as its client does, so
// no socket is left to a blocked handler and the request holds none; it is
// still tracked, so that tracker.WithHoldLimit(KindRequest, d) reports
// requests in flight for longer than d over either protocol.
func Middleware(next http.Handler, opts ...Option) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	m := &middleware{
		next:     next,
		labels:   latestLabel{max: maxRequestLabel},
		requests: rearmed{tr: newConfig(opts).tracker, kind: KindRequest},
	}
	pcs := make([]uintptr, tracker.DefaultStackDepth)
	m.installed = pcs[:runtime.Callers(2, pcs)]
	if mux, ok := next.(*http.ServeMux); ok {
		m.mux = mux
	} else {
		m.stack = m.stackOf(next)
	}
	return m
}

type middleware struct {
	next      http.Handler
	installed []uintptr           // the stack that called Middleware
	stack     tracker.TrackOption // next's open-site stack; nil when next is mux
	mux       *http.ServeMux      // next, when it is one
	stacks    sync.Map            // handlerKey -> its open-site stack, as a TrackOption
	labels    latestLabel         // of the requests no ServeMux routed
	routes    sync.Map            // routeKey -> the label option of the requests it routed
	requests  rearmed             // KindRequest
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stack := m.stack
	var lblOpt tracker.TrackOption
	if m.mux != nil {
		routed, pattern := m.mux.Handler(r)
		stack = m.stackOf(routed)
		lblOpt = m.routeOption(r.Method, pattern)
	}
	if lblOpt == nil {
		lblOpt = m.labels.option(r)
	}
	ctx := r.Context()
	spanOpt := tracker.TrackContext(ctx) // nil for an untraced request
	h := m.requests.track(lblOpt, stack, spanOpt)
	defer m.requests.end(h)
	if r.ProtoMajor == 1 {
		if c, ok := ctx.Value(connKey{}).(net.Conn); ok {
			h.Hold(c)
			if spanOpt != nil {
				// For a hijack of this request (see WrapServer). Over HTTP/1
				// a connection serves one request at a time.
				requestSpans.Store(c, trace.SpanContextFromContext(ctx))
				defer requestSpans.Delete(c)
			}
		}
	}
	m.next.ServeHTTP(w, r)
}

// stackOf is the open-site stack of the requests handler serves, as a
// TrackPCs option: the handler's function entry on top of the stack that
// installed Middleware, computed once for each handler function or type.
func (m *middleware) stackOf(handler http.Handler) tracker.TrackOption {
	var key handlerKey // a struct, not an interface boxed at every request
	if f, ok := handler.(http.HandlerFunc); ok {
		key.code = reflect.ValueOf(f).Pointer() // each closure has code of its own
	} else {
		key.typ = reflect.TypeOf(handler)
	}
	if opt, ok := m.stacks.Load(key); ok {
		return opt.(tracker.TrackOption)
	}
	pcs := m.installed
	if entry := handlerEntry(handler); entry != 0 {
		// +1: a stack holds return addresses, which symbolization steps
		// back from, and the entry would step back into the function
		// before it.
		pcs = append([]uintptr{entry + 1}, m.installed...)
	}
	opt := tracker.TrackPCs(pcs)
	m.stacks.Store(key, opt)
	return opt
}

// handlerKey names the handlers that share an open-site stack: an
// http.HandlerFunc by its code, any other handler by its type.
type handlerKey struct {
	code uintptr
	typ  reflect.Type
}

// handlerEntry is the entry of the function that serves handler's
// requests: the function of an http.HandlerFunc, else the ServeHTTP method
// of handler's type. It is 0 when that function is generated by the
// compiler (a method value, or a pointer's method that calls the value's),
// whose position names no line; the stack then starts at Middleware's
// caller.
func handlerEntry(handler http.Handler) uintptr {
	var entry uintptr
	if f, ok := handler.(http.HandlerFunc); ok {
		entry = reflect.ValueOf(f).Pointer()
	} else {
		t := reflect.TypeOf(handler)
		m, ok := t.MethodByName("ServeHTTP")
		if t.Kind() == reflect.Pointer {
			if vm, vok := t.Elem().MethodByName("ServeHTTP"); vok {
				m, ok = vm, true // the value's own method, not its pointer wrapper
			}
		}
		if ok {
			entry = m.Func.Pointer()
		}
	}
	fn := runtime.FuncForPC(entry)
	if fn == nil {
		return 0
	}
	if file, _ := fn.FileLine(entry); file == "<autogenerated>" {
		return 0
	}
	return entry
}

// maxRequestLabel bounds the label of a request no ServeMux routed: its
// path is the client's to choose.
const maxRequestLabel = 128

// routeKey names the label of the requests a ServeMux routed by pattern;
// method is empty when the pattern names its own.
type routeKey struct{ method, pattern string }

// routeOption is the label option of a request the ServeMux routed by
// pattern (see routeLabel), made once for each pattern and method: a mux
// has a bounded set of patterns, and only the standard methods are kept,
// since a client may send any token as its method. It is nil when no
// pattern matched.
func (m *middleware) routeOption(method, pattern string) tracker.TrackOption {
	if pattern == "" {
		return nil
	}
	key := routeKey{pattern: pattern}
	if !strings.Contains(pattern, " ") {
		if !standardMethod(method) {
			return tracker.TrackLabel(routeLabel(method, pattern))
		}
		key.method = method
	}
	if opt, ok := m.routes.Load(key); ok {
		return opt.(tracker.TrackOption)
	}
	opt := tracker.TrackLabel(routeLabel(method, pattern))
	m.routes.Store(key, opt)
	return opt
}

func standardMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// routeLabel is "GET /users/{id}": the method and the ServeMux pattern that
// routed the request, rather than its path, which may carry identifiers or
// tokens. Empty when no pattern matched.
func routeLabel(method, pattern string) string {
	switch {
	case pattern == "":
		return ""
	case strings.Contains(pattern, " "): // the pattern names its method
		return pattern
	}
	return method + " " + pattern
}
