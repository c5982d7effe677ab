package tracker

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// telemetryRig is an SDK tracer provider recording every span in memory and
// an SDK meter provider read by hand, both shut down with the test.
type telemetryRig struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetryRig(t testing.TB) *telemetryRig {
	t.Helper()
	r := &telemetryRig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		r.tp.Shutdown(context.Background())
		r.mp.Shutdown(context.Background())
	})
	return r
}

func (r *telemetryRig) options() []Option {
	return []Option{WithTracerProvider(r.tp), WithMeterProvider(r.mp)}
}

// named returns the ended spans called name.
func (r *telemetryRig) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// collect reads every metric now, by name.
func (r *telemetryRig) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	out := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// callerLine is the line of its caller's call.
func callerLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func portOf(t testing.TB, addr string) int64 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return int64(n)
}

// A connection dialed during a request, whose peer closes and which the
// program never closes, is reported by one span with every attribute, linked
// to the request's span; closing it later reports a resolved span.
func TestLeakSpanThroughWrappedDialer(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, log := newTestTracker(t, rig.options()...)
	ln := listen(t)
	ctx, request := rig.tp.Tracer("test").Start(t.Context(), "GET /orders")
	dial := tr.WrapDialer(nil)
	line := callerLine() + 1
	c, err := dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	request.End()
	s, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))

	leak := log.Leaks()[0]
	assert.Equal(t, request.SpanContext(), leak.Span, "the leak knows the span that opened it")
	spans := rig.named(SpanLeak)
	require.Len(t, spans, 1)
	sp := spans[0]
	assert.False(t, sp.Parent().IsValid(), "a leak span starts a trace of its own")
	assert.NotEqual(t, request.SpanContext().TraceID(), sp.SpanContext().TraceID())
	require.Len(t, sp.Links(), 1)
	assert.Equal(t, request.SpanContext(), sp.Links()[0].SpanContext, "linked to the request that dialed it")
	assert.Equal(t, codes.Error, sp.Status().Code)
	assert.Equal(t, ScopeName, sp.InstrumentationScope().Name)
	assert.Equal(t, semconv.SchemaURL, sp.InstrumentationScope().SchemaURL)
	assert.WithinDuration(t, sp.EndTime().Add(-leak.For), sp.StartTime(), time.Second,
		"the span covers the time the connection leaked")

	a := attrMap(sp.Attributes())
	assert.Equal(t, "conn", a[AttrResourceKind].AsString())
	assert.Equal(t, "peer_closed", a[AttrLeakReason].AsString())
	assert.Equal(t, int64(1), a[AttrLeakCount].AsInt64())
	assert.Equal(t, int64(leak.ID), a[AttrResourceID].AsInt64())
	assert.Equal(t, "peer-closed", a[AttrResourceState].AsString())
	assert.InDelta(t, leak.For.Seconds(), a[AttrLeakDuration].AsFloat64(), 1e-9)
	assert.Equal(t, leak.Site().String(), a[AttrSite].AsString())
	assert.Equal(t, leak.StackReport(), a[semconv.CodeStacktraceKey].AsString())
	assert.Contains(t, a[semconv.CodeStacktraceKey].AsString(), "otel_test.go:"+strconv.Itoa(line))
	assert.True(t, strings.HasSuffix(a[semconv.CodeFunctionNameKey].AsString(), ".TestLeakSpanThroughWrappedDialer"),
		a[semconv.CodeFunctionNameKey].AsString())
	assert.True(t, strings.HasSuffix(a[semconv.CodeFilePathKey].AsString(), "tracker/otel_test.go"))
	assert.Equal(t, int64(line), a[semconv.CodeLineNumberKey].AsInt64())
	assert.Equal(t, "tcp", a[semconv.NetworkTransportKey].AsString())
	assert.Equal(t, "ipv4", a[semconv.NetworkTypeKey].AsString())
	assert.Equal(t, "127.0.0.1", a[semconv.NetworkPeerAddressKey].AsString())
	assert.Equal(t, portOf(t, ln.Addr().String()), a[semconv.NetworkPeerPortKey].AsInt64())
	assert.Equal(t, "127.0.0.1", a[semconv.NetworkLocalAddressKey].AsString())
	assert.Equal(t, portOf(t, c.LocalAddr().String()), a[semconv.NetworkLocalPortKey].AsInt64())
	assert.Equal(t, "127.0.0.1", a[semconv.ServerAddressKey].AsString(), "the dialed peer is the server")
	assert.Equal(t, portOf(t, ln.Addr().String()), a[semconv.ServerPortKey].AsInt64())
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		assert.Equal(t, "close_wait", a[semconv.NetworkConnectionStateKey].AsString())
	}

	closeLine := callerLine() + 1
	require.NoError(t, c.Close())
	tr.Poll()
	require.Len(t, log.Resolved(), 1)
	res := rig.named(SpanResolved)
	require.Len(t, res, 1, "a resolved leak makes a span of its own")
	r := attrMap(res[0].Attributes())
	assert.Equal(t, int64(leak.ID), r[AttrResourceID].AsInt64())
	assert.Equal(t, "peer_closed", r[AttrLeakReason].AsString())
	assert.Equal(t, "closed", r[AttrResourceState].AsString())
	assert.Contains(t, r[AttrCloseSite].AsString(), "otel_test.go:"+strconv.Itoa(closeLine))
	require.Len(t, res[0].Links(), 1)
	assert.Equal(t, request.SpanContext(), res[0].Links()[0].SpanContext)
	assert.Equal(t, codes.Unset, res[0].Status().Code)
	assert.Equal(t, log.Resolved()[0].ClosedAt, res[0].EndTime(), "a resolved span ends at the close")
	assert.Len(t, rig.named(SpanLeak), 1, "no second leak span")

	tr.Poll()
	assert.Empty(t, tr.tel.info, "a resolved record's span context is forgotten")
}

// A resource given to Track with a context and attributes: its leak span
// links to the context's span and carries the attributes; a connection held
// by it links to both its own opener and its holder's.
func TestLeakSpanOfTrackedResource(t *testing.T) {
	rig := newTelemetryRig(t)
	const body Kind = "test-body"
	tr, log := newTestTracker(t, append(rig.options(), WithHoldLimit(body, time.Millisecond))...)
	tracer := rig.tp.Tracer("test")
	dialCtx, dialSpan := tracer.Start(t.Context(), "pool dial")
	ln := listen(t)
	c, err := tr.WrapDialer(nil)(dialCtx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	dialSpan.End()

	queryCtx, query := tracer.Start(t.Context(), "SELECT orders")
	h := tr.Track(body, TrackContext(queryCtx), TrackLabel("SELECT"),
		TrackAttributes(semconv.DBSystemNamePostgreSQL),
		TrackAddrs("tcp", "127.0.0.1:40000", "127.0.0.1:5432"))
	defer h.Close()
	query.End()
	h.Hold(c)
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))

	spans := rig.named(SpanLeak)
	require.Len(t, spans, 1)
	a := attrMap(spans[0].Attributes())
	assert.Equal(t, "held_too_long", a[AttrLeakReason].AsString())
	assert.Equal(t, string(body), a[AttrResourceKind].AsString())
	assert.Equal(t, "SELECT", a[AttrResourceLabel].AsString())
	assert.Equal(t, "postgresql", a[semconv.DBSystemNameKey].AsString())
	assert.Equal(t, "127.0.0.1", a[semconv.ServerAddressKey].AsString())
	assert.Equal(t, int64(5432), a[semconv.ServerPortKey].AsInt64())
	assert.Equal(t, int64(40000), a[semconv.NetworkLocalPortKey].AsInt64())
	assert.Equal(t, "active", a[AttrResourceState].AsString())
	_, hasState := a[semconv.NetworkConnectionStateKey]
	assert.False(t, hasState, "a handle has no socket state")
	require.Len(t, spans[0].Links(), 1)
	assert.Equal(t, query.SpanContext(), spans[0].Links()[0].SpanContext)

	// The connection it holds leaks too once its peer closes; its span
	// links to the dial's span and to the query's, and carries the holder's
	// attributes.
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) >= 2 }))
	spans = rig.named(SpanLeak)
	require.Len(t, spans, 2)
	a = attrMap(spans[1].Attributes())
	assert.Equal(t, "conn", a[AttrResourceKind].AsString())
	assert.Equal(t, "postgresql", a[semconv.DBSystemNameKey].AsString())
	var linked []trace.SpanContext
	for _, l := range spans[1].Links() {
		linked = append(linked, l.SpanContext)
	}
	assert.ElementsMatch(t, []trace.SpanContext{dialSpan.SpanContext(), query.SpanContext()}, linked)
}

// Ten thousand leaks from one line make one span that counts them; from two
// hundred lines, no more spans than the limit, and the next span says how
// many were held back. The counter counts every leak.
func TestLeakSpansAreBounded(t *testing.T) {
	rig := newTelemetryRig(t)
	const kind Kind = "bounded"
	tr, log := newTestTracker(t, append(rig.options(), WithHoldLimit(kind, time.Nanosecond),
		WithStackDepth(256), WithLeakSpanLimit(20, 200*time.Millisecond))...)
	var handles []*Handle
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	for range 10_000 {
		handles = append(handles, tr.Track(kind))
	}
	tr.Poll()
	require.Len(t, log.Leaks(), 10_000)
	spans := rig.named(SpanLeak)
	require.Len(t, spans, 1, "one open site, one span")
	assert.Equal(t, int64(10_000), attrMap(spans[0].Attributes())[AttrLeakCount].AsInt64())
	assert.LessOrEqual(t, len(spans[0].Links()), maxLinks)

	// 200 sites: the same line reached at 200 depths of recursion.
	for i := range 10_000 {
		handles = append(handles, trackAtDepth(tr, kind, i%200))
	}
	tr.Poll()
	require.Len(t, log.Leaks(), 20_000)
	// The budget is 20 at most, refilled while the handles were made.
	made := len(rig.named(SpanLeak)) - 1
	assert.LessOrEqual(t, made, 20, "no more spans than the limit in one period")
	assert.Greater(t, made, 0)

	time.Sleep(250 * time.Millisecond) // the budget refills
	handles = append(handles, tr.Track(kind))
	tr.Poll()
	spans = rig.named(SpanLeak)
	require.Len(t, spans, made+2)
	assert.Equal(t, int64(200-made), attrMap(spans[made+1].Attributes())[AttrLeakSuppressed].AsInt64(),
		"the groups held back are counted on the next span")

	m := rig.collect(t)
	sum := m[MetricLeaks].Data.(metricdata.Sum[int64])
	var total int64
	for _, dp := range sum.DataPoints {
		total += dp.Value
	}
	assert.Equal(t, int64(20_001), total, "the counter counts every leak, spans or not")
}

//go:noinline
func trackAtDepth(tr *Tracker, kind Kind, depth int) *Handle {
	if depth == 0 {
		return tr.Track(kind, TrackCallerSkip(0))
	}
	return trackAtDepth(tr, kind, depth-1)
}

// WithLeakSpanLimit(0, ...) turns spans off; metrics go on.
func TestLeakSpansOff(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, log := newTestTracker(t, append(rig.options(), WithLeakSpanLimit(0, time.Second))...)
	c, s := dialPair(t, tr)
	_ = c
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Empty(t, rig.spans.Ended())
	assert.Contains(t, rig.collect(t), MetricLeaks)
	assert.Error(t, Validate(WithLeakSpanLimit(-1, time.Second)))
	assert.Error(t, Validate(WithLeakSpanLimit(1, 0)))
}

// The metrics, by name, unit, instrument kind and attributes.
func TestMetrics(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, log := newTestTracker(t, append(rig.options(),
		WithThresholds(Thresholds{CloseWaitWarning: 1}))...)
	var servers []net.Conn
	for range 3 {
		_, s := dialPair(t, tr)
		servers = append(servers, s)
	}
	for _, s := range servers[:2] {
		require.NoError(t, s.Close())
	}
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 2 }))

	m := rig.collect(t)
	leaks := m[MetricLeaks]
	assert.Equal(t, "{leak}", leaks.Unit)
	sum, ok := leaks.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a counter: %T", MetricLeaks, leaks.Data)
	assert.True(t, sum.IsMonotonic)
	assert.Equal(t, metricdata.CumulativeTemporality, sum.Temporality)
	require.Len(t, sum.DataPoints, 1)
	assert.Equal(t, int64(2), sum.DataPoints[0].Value)
	assert.Equal(t, attribute.NewSet(AttrResourceKind.String("conn"), AttrLeakReason.String("peer_closed")),
		sum.DataPoints[0].Attributes)

	open := m[MetricResourceCount]
	assert.Equal(t, "{resource}", open.Unit)
	osum, ok := open.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is an up-down counter: %T", MetricResourceCount, open.Data)
	assert.False(t, osum.IsMonotonic)
	got := map[string]int64{}
	for _, dp := range osum.DataPoints {
		k, _ := dp.Attributes.Value(AttrResourceKind)
		s, _ := dp.Attributes.Value(AttrResourceState)
		got[k.AsString()+"/"+s.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"conn/active": 1, "conn/peer-closed": 2}, got)

	health := m[MetricHealthStatus]
	g, ok := health.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%s is a gauge: %T", MetricHealthStatus, health.Data)
	status := map[string]int64{}
	for _, dp := range g.DataPoints {
		v, _ := dp.Attributes.Value(AttrHealthStatus)
		status[v.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"ok": 0, "warning": 1, "critical": 0}, status)

	cw := m[MetricCloseWaitCount]
	assert.Equal(t, "{connection}", cw.Unit)
	assert.Equal(t, int64(2), cw.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	age := m[MetricCloseWaitAge]
	assert.Equal(t, "s", age.Unit)
	assert.Greater(t, age.Data.(metricdata.Gauge[float64]).DataPoints[0].Value, 0.0)

	if runtime.GOOS == "linux" {
		socks := m[MetricProcessSocketCount]
		assert.Equal(t, "{socket}", socks.Unit)
		ssum, ok := socks.Data.(metricdata.Sum[int64])
		require.True(t, ok, "%s is an up-down counter: %T", MetricProcessSocketCount, socks.Data)
		byState := map[string]int64{}
		for _, dp := range ssum.DataPoints {
			tr, _ := dp.Attributes.Value(semconv.NetworkTransportKey)
			st, _ := dp.Attributes.Value(semconv.NetworkConnectionStateKey)
			byState[tr.AsString()+"/"+st.AsString()] += dp.Value
		}
		// The two client sockets whose peer closed; their server sides are
		// closed, and other tests' sockets may be in any state.
		assert.GreaterOrEqual(t, byState["tcp/close_wait"], int64(2), byState)
		assert.GreaterOrEqual(t, byState["tcp/listen"], int64(3), byState)
	}

	// A closed tracker's observers are gone from the provider.
	tr.Close()
	m = rig.collect(t)
	assert.NotContains(t, m, MetricResourceCount)
}

// The process sweep behind the socket metric runs at most once per
// sweepEvery, however often the metrics are collected.
func TestSocketMetricSweepIsBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process sweep is Linux only")
	}
	rig := newTelemetryRig(t)
	tr, _ := newTestTracker(t, rig.options()...)
	rig.collect(t)
	first := tr.tel.sweptAt
	require.False(t, first.IsZero())
	rig.collect(t)
	assert.Equal(t, first, tr.tel.sweptAt, "a second collection within sweepEvery reuses the sweep")
}

// With the default providers, the tracker reports to the global ones as they
// are when it reports: a program that installs its SDK after New is heard.
// The global providers belong to the process, so the check runs in a
// process of its own.
func TestGlobalProvidersInstalledAfterNew(t *testing.T) {
	if os.Getenv("CONNLEAK_OTEL_GLOBAL_CHILD") == "1" {
		globalProvidersChild(t)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestGlobalProvidersInstalledAfterNew$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "CONNLEAK_OTEL_GLOBAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "global providers: leak span and metrics seen")
}

func globalProvidersChild(t *testing.T) {
	tr, log := newTestTracker(t)
	rig := newTelemetryRig(t)
	otel.SetTracerProvider(rig.tp)
	otel.SetMeterProvider(rig.mp)
	assert.Equal(t, rig.tp, tr.TracerProvider())
	_, s := dialPair(t, tr)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	require.Len(t, rig.named(SpanLeak), 1)
	require.Contains(t, rig.collect(t), MetricResourceCount)
	t.Log("global providers: leak span and metrics seen")
}

func TestProviderAccessors(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, _ := newTestTracker(t, rig.options()...)
	assert.Equal(t, rig.tp, tr.TracerProvider())
	assert.Equal(t, rig.mp, tr.MeterProvider())
	plain, _ := newTestTracker(t)
	assert.Equal(t, otel.GetTracerProvider(), plain.TracerProvider())
	assert.Equal(t, otel.GetMeterProvider(), plain.MeterProvider())
}

// A connection opened without a span and without attributes costs the
// tracker's telemetry nothing: no side entry.
func TestUntracedRecordsKeepNoSideEntry(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, _ := newTestTracker(t, rig.options()...)
	c, _ := dialPair(t, tr)
	assert.False(t, c.(trackedConn).tracked().linked.traced())
	assert.Empty(t, tr.tel.info)
	ctx, sp := rig.tp.Tracer("test").Start(t.Context(), "x")
	defer sp.End()
	ln := listen(t)
	d, err := tr.WrapDialer(nil)(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	assert.True(t, d.(trackedConn).tracked().linked.traced())
	assert.Len(t, tr.tel.info, 1)
	require.NoError(t, d.Close())
	assert.Empty(t, tr.tel.info, "an active record closed drops its entry at once")
}

// otlpReceiver is an OTLP/HTTP trace receiver on loopback: it decodes each
// export request with the protocol's own protobuf types.
type otlpReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
	errs []error
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		err := r.decode(req)
		r.mu.Lock()
		if err != nil {
			r.errs = append(r.errs, err)
		}
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) decode(req *http.Request) error {
	if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
		return fmt.Errorf("unexpected %s %s", req.Method, req.URL.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		return fmt.Errorf("content type %q, want protobuf", ct)
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			return err
		}
		body = zr
	}
	b, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return err
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		return err
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, &msg)
	r.mu.Unlock()
	return nil
}

// spans returns every span received, with its scope's name.
func (r *otlpReceiver) spans() (out []*tracepb.Span, scopes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.reqs {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, s)
					scopes = append(scopes, ss.GetScope().GetName())
				}
			}
		}
	}
	return out, scopes
}

// The leak span crosses the real OTLP/HTTP protocol: exported in protobuf by
// the SDK's exporter and batch processor to a receiver on loopback, which
// finds it with its attributes and its link to the request that opened the
// connection.
func TestLeakSpanOverOTLP(t *testing.T) {
	recv := newOTLPReceiver(t)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	exp, err := otlptracehttp.New(t.Context(),
		otlptracehttp.WithEndpointURL(recv.srv.URL+"/v1/traces"),
		otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })

	tr, log := newTestTracker(t, WithTracerProvider(tp))
	ctx, request := tp.Tracer("test").Start(t.Context(), "GET /orders")
	ln := listen(t)
	c, err := tr.WrapDialer(nil)(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	request.End()
	s, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	require.NoError(t, tp.ForceFlush(t.Context()))

	recv.mu.Lock()
	require.Empty(t, recv.errs)
	recv.mu.Unlock()
	spans, scopes := recv.spans()
	var leak *tracepb.Span
	for i, s := range spans {
		if s.Name == SpanLeak {
			leak = s
			assert.Equal(t, ScopeName, scopes[i])
		}
	}
	require.NotNil(t, leak, "the receiver got %d spans, none named %s", len(spans), SpanLeak)
	attrs := map[string]*commonpb.AnyValue{}
	for _, kv := range leak.Attributes {
		attrs[kv.Key] = kv.Value
	}
	assert.Equal(t, "peer_closed", attrs[string(AttrLeakReason)].GetStringValue())
	assert.Equal(t, "conn", attrs[string(AttrResourceKind)].GetStringValue())
	assert.Equal(t, "tcp", attrs[string(semconv.NetworkTransportKey)].GetStringValue())
	assert.Equal(t, portOf(t, ln.Addr().String()), attrs[string(semconv.ServerPortKey)].GetIntValue())
	assert.Contains(t, attrs[string(semconv.CodeStacktraceKey)].GetStringValue(), "TestLeakSpanOverOTLP")
	assert.True(t, strings.HasSuffix(attrs[string(semconv.CodeFunctionNameKey)].GetStringValue(), ".TestLeakSpanOverOTLP"))
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, leak.GetStatus().GetCode())
	require.Len(t, leak.Links, 1)
	want := request.SpanContext()
	assert.Equal(t, want.TraceID(), trace.TraceID(leak.Links[0].TraceId))
	assert.Equal(t, want.SpanID(), trace.SpanID(leak.Links[0].SpanId))
	assert.NotEqual(t, leak.TraceId, leak.Links[0].TraceId, "the leak span has a trace of its own")
}

// The cost of the OpenTelemetry options, measured in one run with the
// interleaved benchmarks (interleave: its "raw" is each pair's baseline):
//
//	go test -run '^$' -bench InterleavedOTel -count 5 ./tracker
//
// noop: a tracker with no-op providers against one without the options
// (bar ≤ 1.02); sdk: a tracker reporting to the SDK, spans through a batch
// processor, against the raw connection (bar ≤ 1.03 for echo).
func BenchmarkInterleavedOTel(b *testing.B) {
	noopOpts := []Option{WithTracerProvider(tracenoop.NewTracerProvider()), WithMeterProvider(metricnoop.NewMeterProvider())}
	sdkOpts := func(b *testing.B) ([]Option, trace.Tracer) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
		return []Option{WithTracerProvider(tp), WithMeterProvider(mp)}, tp.Tracer("bench")
	}
	b.Run("echo4KiB/noop", func(b *testing.B) {
		plain, ln := benchSetup(b)
		withOTel := quietTracker(b, noopOpts...)
		dial := echoServer(b, ln)
		interleave(b, echoer(b, plain.WrapConn(dial()), 4<<10), echoer(b, withOTel.WrapConn(dial()), 4<<10))
	})
	b.Run("echo4KiB/sdk", func(b *testing.B) {
		opts, _ := sdkOpts(b)
		_, ln := benchSetup(b)
		withOTel := quietTracker(b, opts...)
		dial := echoServer(b, ln)
		interleave(b, echoer(b, dial(), 4<<10), echoer(b, withOTel.WrapConn(dial()), 4<<10))
	})
	b.Run("dial/noop", func(b *testing.B) {
		plain, ln := benchSetup(b)
		withOTel := quietTracker(b, noopOpts...)
		cycle := newDialCycle(b, ln)
		plainDial, otelDial := plain.WrapDialer(nil), withOTel.WrapDialer(nil)
		interleave(b, func() { cycle.run(plainDial, nil) }, func() { cycle.run(otelDial, nil) })
	})
	// The dial of a traced request: the span context kept beside the record.
	b.Run("dial/sdk-span", func(b *testing.B) {
		opts, tracer := sdkOpts(b)
		plain, ln := benchSetup(b)
		withOTel := quietTracker(b, opts...)
		cycle := newDialCycle(b, ln)
		ctx, sp := tracer.Start(b.Context(), "request")
		defer sp.End()
		traced := cycle
		traced.ctx = ctx
		plainDial, otelDial := plain.WrapDialer(nil), withOTel.WrapDialer(nil)
		interleave(b, func() { cycle.run(plainDial, nil) }, func() { traced.run(otelDial, nil) })
	})
}

// discardExporter is an SDK span exporter that drops what it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// A resource dropped without Close is reported collected, with its link; its
// side entry goes with the report.
func TestLeakSpanOfCollectedResource(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, log := newTestTracker(t, rig.options()...)
	ctx, sp := rig.tp.Tracer("test").Start(t.Context(), "query")
	sp.End()
	func() {
		tr.Track("dropped", TrackContext(ctx)) // never closed, never kept
	}()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		return len(log.Leaks()) == 1
	}))
	spans := rig.named(SpanLeak)
	require.Len(t, spans, 1)
	assert.Equal(t, "collected", attrMap(spans[0].Attributes())[AttrLeakReason].AsString())
	require.Len(t, spans[0].Links(), 1)
	assert.Equal(t, sp.SpanContext(), spans[0].Links()[0].SpanContext)
	tr.tel.mu.Lock()
	defer tr.tel.mu.Unlock()
	assert.Empty(t, tr.tel.info)
}

// blockingExporter holds every export until released: a collector that has
// stopped answering.
type blockingExporter struct{ release chan struct{} }

func (e blockingExporter) ExportSpans(ctx context.Context, _ []sdktrace.ReadOnlySpan) error {
	select {
	case <-e.release:
	case <-ctx.Done():
	}
	return nil
}
func (blockingExporter) Shutdown(context.Context) error { return nil }

// An exporter that never answers, behind a processor that exports on the
// poller's goroutine, stalls the poller and nothing else: tracked
// connections are dialed, written, read and closed meanwhile.
func TestStalledExporterDoesNotBlockIO(t *testing.T) {
	exp := blockingExporter{release: make(chan struct{})}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr, log := newTestTracker(t, WithTracerProvider(tp))
	_, s := dialPair(t, tr)
	require.NoError(t, s.Close())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 })
	}()
	require.Eventually(t, func() bool { return len(log.Leaks()) == 1 }, 5*time.Second, time.Millisecond,
		"the leak is judged and its span is being exported")

	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	done := make(chan error, 1)
	go func() {
		for range 50 {
			c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
			if err != nil {
				done <- err
				return
			}
			buf := []byte("ping")
			_, err = c.Write(buf)
			if err == nil {
				_, err = io.ReadFull(c, buf)
			}
			c.Close()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("I/O on tracked connections waited for the stalled exporter")
	}
	select {
	case <-polled:
		t.Fatal("the poll returned before its export")
	default:
	}
	close(exp.release)
	<-polled
}

// panickingProvider stands for a program's OpenTelemetry setup that
// panics: its tracers panic when a span starts.
type panickingProvider struct{ tracenoop.TracerProvider }

func (panickingProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return panickingTracer{}
}

type panickingTracer struct{ tracenoop.Tracer }

func (panickingTracer) Start(context.Context, string, ...trace.SpanStartOption) (context.Context, trace.Span) {
	panic("exporter exploded")
}

// A panic in the program's tracer provider is logged; Poll returns, the
// leak still reaches the callback, and the poller goes on.
func TestPanickingTracerProviderIsContained(t *testing.T) {
	var logged lockedBuffer
	tr, log := newTestTracker(t, WithTracerProvider(panickingProvider{}),
		WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	c, s := dialPair(t, tr)
	defer c.Close()
	require.NoError(t, s.Close())
	require.NotPanics(t, func() {
		require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	})
	assert.Contains(t, logged.String(), "OpenTelemetry reporting panicked")
}

// A TrackAttributes made once and given to every Track adds no allocation
// to it, and a second TrackAttributes on one Track extends a copy: the
// records that share the first option's attributes keep theirs.
func TestTrackAttributesShared(t *testing.T) {
	tr, _ := newTestTracker(t)
	shared := TrackAttributes(semconv.DBSystemNamePostgreSQL)
	plain := testing.AllocsPerRun(200, func() { tr.Track("test-attrs").Close() })
	with := testing.AllocsPerRun(200, func() { tr.Track("test-attrs", shared).Close() })
	assert.Equal(t, plain, with, "allocations of a Track with a shared TrackAttributes")

	a := tr.Track("test-attrs", shared)
	defer a.Close()
	b := tr.Track("test-attrs", shared, TrackAttributes(semconv.ServerAddress("db1")))
	defer b.Close()
	c := tr.Track("test-attrs", shared, TrackAttributes(semconv.ServerAddress("db2")))
	defer c.Close()
	byID := map[uint64][]attribute.KeyValue{}
	for _, r := range tr.Open() {
		byID[r.ID] = r.Attributes
	}
	assert.Equal(t, []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}, byID[a.ID()])
	assert.Equal(t, []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.ServerAddress("db1")}, byID[b.ID()])
	assert.Equal(t, []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.ServerAddress("db2")}, byID[c.ID()])
}

// A context without a span gives no option, and a Track given it makes no
// allocation for it: an untraced request pays nothing more.
func TestTrackContextWithoutASpan(t *testing.T) {
	assert.Nil(t, TrackContext(context.Background()))
	tr, _ := newTestTracker(t)
	plain := testing.AllocsPerRun(200, func() { tr.Track("test-ctx").Close() })
	untraced := testing.AllocsPerRun(200, func() { tr.Track("test-ctx", TrackContext(context.Background())).Close() })
	assert.Equal(t, plain, untraced)
	h := tr.Track("test-ctx", TrackContext(context.Background()))
	defer h.Close()
	for _, r := range tr.Open() {
		assert.False(t, r.Span.IsValid())
	}
}
