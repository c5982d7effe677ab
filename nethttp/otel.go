package nethttp

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/tracker"
)

// ScopeName is the instrumentation scope of nethttp's metrics.
const ScopeName = "github.com/connleak/connleak/nethttp"

// httpDialer dials with dial, a tracker's, giving each connection the
// attributes of an HTTP client's: network.protocol.name "http", and the
// server.address and server.port it was dialed for, the host name of the
// request's URL (a proxy's, through a proxy) rather than the IP it
// resolved to. They mark the tracker's connections that
// http.client.open_connections counts, and its leak spans carry them.
func httpDialer(dial tracker.DialFunc) tracker.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		attrs := make([]attribute.KeyValue, 1, 3)
		attrs[0] = semconv.NetworkProtocolName("http")
		if host, port, err := net.SplitHostPort(addr); err == nil {
			attrs = append(attrs, semconv.ServerAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPort(p))
			}
		}
		return dial(tracker.ContextWithDialAttributes(ctx, attrs...), network, addr)
	}
}

// clientMetrics holds, for every tracker a client transport was made with,
// the registration of its http.client.open_connections callback. Keys are
// weak: a tracker the program has dropped takes its callback with it.
var clientMetrics sync.Map // weak.Pointer[tracker.Tracker] -> struct{}

// observeClientConns registers, once per tracker, the observer of
// http.client.open_connections on the tracker's meter provider.
//
// The metric is observed when it is collected, from the tracker's own
// record of the connections its client transports dialed, rather than
// counted with an Add on each request and each connection's end: a
// request costs nothing more, and no close of a connection can be missed,
// since the count is what is open at that moment. The conventions' kind,
// an UpDownCounter, is kept in its asynchronous form (the semantic
// conventions package's ClientOpenConnectionsObservable): the value is a
// count that goes up and down, reported as a non-monotonic sum.
func observeClientConns(tr *tracker.Tracker) {
	key := weak.Make(tr)
	if _, loaded := clientMetrics.LoadOrStore(key, struct{}{}); loaded {
		return
	}
	m := tr.MeterProvider().Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	inst, err := httpconv.NewClientOpenConnectionsObservable(m)
	if err != nil {
		clientMetrics.Delete(key)
		return // a provider that cannot make it: the client works without it
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if tr := key.Value(); tr != nil {
			observeOpenConns(o, inst, tr)
		}
		return nil
	}, inst.Inst())
	if err != nil {
		clientMetrics.Delete(key)
		return
	}
	// The provider outlives a tracker made for a test or a job: the
	// callback goes with the tracker.
	runtime.AddCleanup(tr, func(reg metric.Registration) {
		reg.Unregister()
		clientMetrics.Delete(key)
	}, reg)
}

// connGroup is one series of http.client.open_connections.
type connGroup struct {
	state httpconv.ConnectionStateAttr
	host  string
	port  int
}

// observeOpenConns counts tr's open client connections by state and
// server. A connection is active while a response body is being read from
// it (the body holds it, see tracker.Handle.Hold), and idle otherwise:
// waiting in the transport's pool, or carrying a request whose response
// has not arrived yet. Over HTTP/2, where one connection carries many
// bodies, it is active while the latest body to arrive on it is open.
// The cost, at collection only, is one snapshot of tr's open resources.
func observeOpenConns(o metric.Observer, inst httpconv.ClientOpenConnectionsObservable, tr *tracker.Tracker) {
	counts := make(map[connGroup]int64)
	for _, r := range tr.Open() {
		if r.Kind != tracker.KindConn || r.Accepted {
			continue
		}
		g, ok := httpConn(r.Attributes)
		if !ok {
			continue
		}
		g.state = httpconv.ConnectionStateIdle
		if r.HeldBy != nil && r.HeldBy.Kind == KindBody {
			g.state = httpconv.ConnectionStateActive
		}
		counts[g]++
	}
	for g, n := range counts {
		o.ObserveInt64(inst.Inst(), n, metric.WithAttributes(
			inst.AttrConnectionState(g.state),
			inst.AttrServerAddress(g.host),
			inst.AttrServerPort(g.port)))
	}
}

// httpConn reads the server of a connection dialed by httpDialer from its
// attributes; ok is false for a connection something else dialed.
func httpConn(attrs []attribute.KeyValue) (g connGroup, ok bool) {
	var isHTTP, hasHost, hasPort bool
	for _, a := range attrs {
		switch a.Key {
		case semconv.NetworkProtocolNameKey:
			isHTTP = a.Value.AsString() == "http"
		case semconv.ServerAddressKey:
			g.host, hasHost = a.Value.AsString(), true
		case semconv.ServerPortKey:
			g.port, hasPort = int(a.Value.AsInt64()), true
		}
	}
	return g, isHTTP && hasHost && hasPort
}

// requestSpans holds the span of each traced HTTP/1 request in flight
// through Middleware, by the connection it came on: net/http's ConnState
// hook, where WrapServer learns of a hijack, is given the connection, not
// the request.
var requestSpans sync.Map // net.Conn -> trace.SpanContext

// hijackSpan is the TrackOption that gives the hold on a connection just
// hijacked the span of the request that hijacked it, when Middleware is
// serving a traced request on it; nil otherwise.
func hijackSpan(c net.Conn) tracker.TrackOption {
	for range 4 { // the conn as net/http keyed it; else the conns under it
		if v, ok := requestSpans.Load(c); ok {
			ctx := trace.ContextWithSpanContext(context.Background(), v.(trace.SpanContext))
			return tracker.TrackContext(ctx)
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = nc.NetConn()
	}
	return nil
}
