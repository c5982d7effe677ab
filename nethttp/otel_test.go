package nethttp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// otelRig is an SDK tracer provider recording spans in memory and an SDK
// meter provider read by hand, shut down with the test.
type otelRig struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newOtelRig(t *testing.T) *otelRig {
	t.Helper()
	r := &otelRig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		r.tp.Shutdown(context.Background())
		r.mp.Shutdown(context.Background())
	})
	return r
}

func (r *otelRig) options() []tracker.Option {
	return []tracker.Option{tracker.WithTracerProvider(r.tp), tracker.WithMeterProvider(r.mp)}
}

// leakSpan waits, bounded, for a leak span of kind and returns it.
func (r *otelRig) leakSpan(t *testing.T, kind tracker.Kind) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range r.spans.Ended() {
			if s.Name() == tracker.SpanLeak && attrsOf(s.Attributes())[tracker.AttrResourceKind].AsString() == string(kind) {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s span of kind %s", tracker.SpanLeak, kind)
	return nil
}

// openConns collects http.client.open_connections from nethttp's scope,
// and returns it (ok false when absent) with its series by attributes.
func (r *otelRig) openConns(t *testing.T) (m metricdata.Metrics, series map[attribute.Distinct]metricdata.DataPoint[int64], ok bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != nethttp.ScopeName {
			continue
		}
		assert.Equal(t, semconv.SchemaURL, sm.Scope.SchemaURL)
		for _, mm := range sm.Metrics {
			if mm.Name != (httpconv.ClientOpenConnectionsObservable{}).Name() {
				continue
			}
			series = make(map[attribute.Distinct]metricdata.DataPoint[int64])
			if sum, isSum := mm.Data.(metricdata.Sum[int64]); isSum {
				for _, dp := range sum.DataPoints {
					series[dp.Attributes.Equivalent()] = dp
				}
			}
			return mm, series, true
		}
	}
	return metricdata.Metrics{}, nil, false
}

func attrsOf(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func linked(s sdktrace.ReadOnlySpan) []trace.SpanContext {
	var out []trace.SpanContext
	for _, l := range s.Links() {
		out = append(out, l.SpanContext)
	}
	return out
}

func portNumber(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// A body left open on an error path is reported by a leak span linked to
// the span of the request that returned it; its connection, dialed by an
// earlier request and left in CLOSE_WAIT under the open body, by a span
// linked to both: the request that dialed it, and the one whose body holds
// it.
func TestLeakSpansLinkToTheRequest(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, append(rig.options(), tracker.WithHoldLimit(nethttp.KindBody, 100*time.Millisecond))...)
	srv := server(t, false)
	c := client(t, tr, srv)
	tracer := rig.tp.Tracer("test")

	ctx, dialing := tracer.Start(t.Context(), "GET /ok", trace.WithSpanKind(trace.SpanKindClient))
	require.NoError(t, fetch(ctx, c, srv.URL+"/ok"))
	dialing.End()
	ctx, failing := tracer.Start(t.Context(), "GET /fail", trace.WithSpanKind(trace.SpanKindClient))
	require.Error(t, fetch(ctx, c, srv.URL+"/fail"), "the body of this one is never closed")
	failing.End()

	body := rig.leakSpan(t, nethttp.KindBody)
	// fetch drops the body: a collection may come before the hold limit.
	assert.Contains(t, []string{"held_too_long", "collected"}, attrsOf(body.Attributes())[tracker.AttrLeakReason].AsString())
	assert.Equal(t, []trace.SpanContext{failing.SpanContext()}, linked(body),
		"the body's span links to the request that returned it")

	conn := rig.leakSpan(t, tracker.KindConn)
	a := attrsOf(conn.Attributes())
	assert.Equal(t, "peer_closed", a[tracker.AttrLeakReason].AsString())
	assert.Equal(t, "close_wait", a[semconv.NetworkConnectionStateKey].AsString())
	assert.ElementsMatch(t, []trace.SpanContext{dialing.SpanContext(), failing.SpanContext()}, linked(conn),
		"the connection's span links to the request that dialed it and to the one whose body holds it")
	assert.Equal(t, "http", a[semconv.NetworkProtocolNameKey].AsString())
	assert.Equal(t, "127.0.0.1", a[semconv.ServerAddressKey].AsString())
	assert.Equal(t, int64(portNumber(t, srv.Listener.Addr().String())), a[semconv.ServerPortKey].AsInt64())
}

// An untraced request gives its body no span, and its leak span no link.
func TestUntracedBodyHasNoSpan(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, append(rig.options(), tracker.WithHoldLimit(nethttp.KindBody, 50*time.Millisecond))...)
	srv := server(t, false)
	c := client(t, tr, srv)
	require.Error(t, fetch(t.Context(), c, srv.URL+"/fail"))
	for _, r := range openOf(tr, nethttp.KindBody) {
		assert.False(t, r.Span.IsValid())
	}
	assert.Empty(t, rig.leakSpan(t, nethttp.KindBody).Links())
}

// http.client.open_connections counts the client's connections by
// http.connection.state and server, as the semantic conventions name them:
// one active while its body is open, one idle in the pool; none of a
// connection the tracker dialed for something else. Closing the body makes
// both idle, and closing the idle connections ends both series.
func TestOpenConnectionsMetric(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: nethttp.NewTransport(&http.Transport{}, nethttp.WithTracker(tr))}
	t.Cleanup(c.CloseIdleConnections)
	port := portNumber(t, srv.Listener.Addr().String())

	other, err := tr.WrapDialer(nil)(t.Context(), "tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer other.Close()

	open, err := c.Get(srv.URL) // its body stays open: its connection is active
	require.NoError(t, err)
	defer open.Body.Close()
	done, err := c.Get(srv.URL) // on a second connection, read and closed: idle
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, done.Body)
	require.NoError(t, err)
	require.NoError(t, done.Body.Close())

	inst := httpconv.ClientOpenConnectionsObservable{}
	key := func(state httpconv.ConnectionStateAttr) attribute.Distinct {
		set := attribute.NewSet(inst.AttrConnectionState(state),
			inst.AttrServerAddress("127.0.0.1"), inst.AttrServerPort(port))
		return set.Equivalent()
	}
	m, series, ok := rig.openConns(t)
	require.True(t, ok, "no %s metric", inst.Name())
	assert.Equal(t, "{connection}", m.Unit)
	assert.Equal(t, inst.Description(), m.Description)
	sum, isSum := m.Data.(metricdata.Sum[int64])
	require.True(t, isSum, "an UpDownCounter is a sum: %T", m.Data)
	assert.False(t, sum.IsMonotonic, "an UpDownCounter's sum is not monotonic")
	assert.Equal(t, metricdata.CumulativeTemporality, sum.Temporality)
	require.Len(t, series, 2, "one series per state: %v", sum.DataPoints)
	assert.Equal(t, int64(1), series[key(httpconv.ConnectionStateActive)].Value, "active")
	assert.Equal(t, int64(1), series[key(httpconv.ConnectionStateIdle)].Value, "idle")
	for _, dp := range series {
		assert.Equal(t, 3, dp.Attributes.Len(), "the required attributes and no others: %v", dp.Attributes.ToSlice())
	}

	_, err = io.Copy(io.Discard, open.Body)
	require.NoError(t, err)
	require.NoError(t, open.Body.Close())
	_, series, _ = rig.openConns(t)
	require.Len(t, series, 1, "no connection active")
	assert.Equal(t, int64(2), series[key(httpconv.ConnectionStateIdle)].Value)

	c.CloseIdleConnections()
	_, series, _ = rig.openConns(t)
	assert.Empty(t, series, "no connection open")
}

// spanning starts a server span around each request, as a tracing
// middleware does, and remembers the last one's context.
type spanning struct {
	tracer trace.Tracer
	next   http.Handler
	mu     sync.Mutex
	last   trace.SpanContext
}

func (s *spanning) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, sp := s.tracer.Start(r.Context(), r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
	defer sp.End()
	s.mu.Lock()
	s.last = sp.SpanContext()
	s.mu.Unlock()
	s.next.ServeHTTP(w, r.WithContext(ctx))
}

func (s *spanning) span() trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// A hijacked connection left open is reported by a leak span linked to the
// span of the request that hijacked it, when Middleware serves the request
// inside the tracing handler; Middleware's in-flight request takes that
// span too.
func TestHijackLeakSpanLinksToTheRequest(t *testing.T) {
	for _, p := range []proto{http1, http1TLS} {
		t.Run(p.name, func(t *testing.T) {
			rig := newOtelRig(t)
			tr, _ := newTracker(t, rig.options()...)
			f := &forgetful{}
			defer f.closeAll()
			var inFlight []tracker.Resource
			var mu sync.Mutex
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight = openOf(tr, nethttp.KindRequest)
				mu.Unlock()
				f.ServeHTTP(w, r)
			})
			s := &spanning{tracer: rig.tp.Tracer("test"), next: nethttp.Middleware(handler, nethttp.WithTracker(tr))}
			ts := trackedServer(t, tr, s, p, nil)
			c := rawConn(t, ts, p)
			assert.Equal(t, "hi", getRaw(t, c, "/ws"))
			require.NoError(t, c.Close()) // the client goes; the server's side stays

			request := s.span()
			require.True(t, request.IsValid())
			mu.Lock()
			require.Len(t, inFlight, 1)
			assert.Equal(t, request, inFlight[0].Span, "the request in flight took its span")
			mu.Unlock()

			sp := rig.leakSpan(t, tracker.KindConn)
			assert.Equal(t, "close_wait", attrsOf(sp.Attributes())[semconv.NetworkConnectionStateKey].AsString())
			assert.Equal(t, []trace.SpanContext{request}, linked(sp), "linked to the request that hijacked it")
			assert.Equal(t, string(nethttp.KindHijacked), attrsOf(sp.Links()[0].Attributes)[tracker.AttrResourceKind].AsString(),
				"through its hijack")
		})
	}
}
