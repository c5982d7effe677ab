package sqlpool_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
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
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"

	"github.com/connleak/connleak/sqlpool"
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

// leakSpan polls tr until a leak span of kind has ended, bounded, and
// returns it.
func (r *otelRig) leakSpan(t *testing.T, tr *tracker.Tracker, kind tracker.Kind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	waitFor(t, tr, "a leak span of kind "+string(kind), func() bool {
		for _, s := range r.spans.Ended() {
			if s.Name() == tracker.SpanLeak && attrsOf(s.Attributes())[tracker.AttrResourceKind].AsString() == string(kind) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// metrics collects sqlpool's scope, by metric name.
func (r *otelRig) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != sqlpool.ScopeName {
			continue
		}
		assert.Equal(t, semconv.SchemaURL, sm.Scope.SchemaURL)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
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

// sumOf returns an int64 sum's points by their attributes, failing unless
// the metric is a non-monotonic sum (an UpDownCounter) in {connection}.
func sumOf(t *testing.T, m metricdata.Metrics) map[attribute.Distinct]int64 {
	t.Helper()
	assert.Equal(t, "{connection}", m.Unit, m.Name)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T, not an int64 sum", m.Name, m.Data)
	assert.False(t, sum.IsMonotonic, "%s is an UpDownCounter", m.Name)
	out := map[attribute.Distinct]int64{}
	for _, dp := range sum.DataPoints {
		out[dp.Attributes.Equivalent()] = dp.Value
	}
	return out
}

func countKey(pool string, state dbconv.ClientConnectionStateAttr) attribute.Distinct {
	inst := dbconv.ClientConnectionCountObservable{}
	s := attribute.NewSet(inst.AttrClientConnectionPoolName(pool), inst.AttrClientConnectionState(state))
	return s.Equivalent()
}

func poolKey(pool string) attribute.Distinct {
	s := attribute.NewSet(semconv.DBClientConnectionPoolName(pool))
	return s.Equivalent()
}

// Rows left open by a traced query are reported by a leak span linked to
// the query's span, carrying db.system.name and the pool's name; so is the
// checkout the query took. An untraced query's Rows have no link.
func TestLeakSpansLinkToTheQuery(t *testing.T) {
	for _, c := range []struct {
		b      backend
		system string
	}{{backends[3], "sqlite"}, {backends[0], "postgresql"}} {
		t.Run(c.b.name, func(t *testing.T) {
			rig := newOtelRig(t)
			tr, _ := newTracker(t, rig.options()...)
			db := c.b.open(t, tr, sqlpool.WithRowsHoldLimit(time.Millisecond),
				sqlpool.WithCheckoutHoldLimit(time.Millisecond), sqlpool.WithPoolName("orders"))

			ctx, query := rig.tp.Tracer("test").Start(t.Context(), "SELECT orders")
			rows, err := db.QueryContext(ctx, "SELECT 1")
			require.NoError(t, err)
			defer rows.Close()
			query.End()

			// The checkout carries the rows of the query that took it.
			for _, kind := range []tracker.Kind{sqlpool.KindCheckout} {
				s := rig.leakSpan(t, tr, kind)
				a := attrsOf(s.Attributes())
				assert.Equal(t, "held_too_long", a[tracker.AttrLeakReason].AsString(), kind)
				assert.Equal(t, c.system, a[semconv.DBSystemNameKey].AsString(), kind)
				assert.Equal(t, "orders", a[semconv.DBClientConnectionPoolNameKey].AsString(), kind)
				assert.Equal(t, []trace.SpanContext{query.SpanContext()}, linked(s), "%s links to the query", kind)
			}
			require.NoError(t, rows.Close())

			rows, err = db.QueryContext(t.Context(), "SELECT 2")
			require.NoError(t, err)
			defer rows.Close()
			out := openOf(tr, sqlpool.KindCheckout)
			require.NotEmpty(t, out)
			for _, r := range out {
				assert.False(t, r.Span.IsValid(), "an untraced query's checkout has a span")
				assert.Equal(t, c.system, attrsOf(r.Attributes)[semconv.DBSystemNameKey].AsString())
			}
		})
	}
}

// A traced transaction and a traced DB.Conn link their resources to their
// spans too.
func TestTxAndConnLinkToTheirSpans(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	db := backends[3].open(t, tr)
	db.SetMaxOpenConns(2)
	tracer := rig.tp.Tracer("test")

	ctx, begin := tracer.Start(t.Context(), "BEGIN")
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	begin.End()
	ctx, take := tracer.Start(t.Context(), "take")
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	take.End()

	txs := openOf(tr, sqlpool.KindTx)
	require.Len(t, txs, 1)
	assert.Equal(t, begin.SpanContext(), txs[0].Span)
	var spans []trace.SpanContext
	for _, r := range openOf(tr, sqlpool.KindCheckout) {
		spans = append(spans, r.Span)
	}
	assert.ElementsMatch(t, []trace.SpanContext{begin.SpanContext(), take.SpanContext()}, spans)
}

// A pooled PostgreSQL connection ended by pg_terminate_backend while idle
// is reported by its socket's span, which carries db.system.name and the
// pool's name given through the dial.
func TestSocketSpanCarriesDBSystem(t *testing.T) {
	b := backends[0]
	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	db := b.open(t, tr)
	b.kill(t, session(t, b, db))
	s := rig.leakSpan(t, tr, tracker.KindConn)
	a := attrsOf(s.Attributes())
	assert.Equal(t, "idle_in_pool", a[tracker.AttrLeakReason].AsString())
	assert.Equal(t, "postgresql", a[semconv.DBSystemNameKey].AsString())
	assert.Equal(t, "postgresql", a[semconv.DBClientConnectionPoolNameKey].AsString(),
		"OpenDB names its pool after the system")
	assert.Equal(t, "127.0.0.1", a[semconv.ServerAddressKey].AsString())
}

// db.client.connection.count, .max and .use_time as the semantic
// conventions name them: one connection used and one idle, the pool's
// limit, and each checkout's time from checkout to return.
func TestPoolMetrics(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	db := sqlpool.OpenDB(backends[3].connector(t, nil), sqlpool.WithTracker(tr), sqlpool.WithPoolName("orders"))
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)

	used, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer used.Close()
	idle, err := db.Conn(t.Context())
	require.NoError(t, err)
	require.NoError(t, idle.PingContext(t.Context()))
	require.NoError(t, idle.Close())

	ms := rig.metrics(t)
	count := ms[dbconv.ClientConnectionCountObservable{}.Name()]
	assert.Equal(t, map[attribute.Distinct]int64{
		countKey("orders", dbconv.ClientConnectionStateUsed): 1,
		countKey("orders", dbconv.ClientConnectionStateIdle): 1,
	}, sumOf(t, count))
	assert.Equal(t, map[attribute.Distinct]int64{poolKey("orders"): 4},
		sumOf(t, ms[dbconv.ClientConnectionMaxObservable{}.Name()]))
	useTime := func() metricdata.HistogramDataPoint[float64] {
		m := rig.metrics(t)[dbconv.ClientConnectionUseTime{}.Name()]
		assert.Equal(t, "s", m.Unit)
		h, ok := m.Data.(metricdata.Histogram[float64])
		require.True(t, ok, "use_time is a %T", m.Data)
		require.Len(t, h.DataPoints, 1)
		assert.Equal(t, poolKey("orders"), h.DataPoints[0].Attributes.Equivalent())
		return h.DataPoints[0]
	}
	assert.Equal(t, uint64(1), useTime().Count, "the idle connection's checkout")

	time.Sleep(20 * time.Millisecond)
	require.NoError(t, used.Close())
	assert.Equal(t, map[attribute.Distinct]int64{
		countKey("orders", dbconv.ClientConnectionStateUsed): 0,
		countKey("orders", dbconv.ClientConnectionStateIdle): 2,
	}, sumOf(t, rig.metrics(t)[dbconv.ClientConnectionCountObservable{}.Name()]))
	u := useTime()
	assert.Equal(t, uint64(2), u.Count)
	max, ok := u.Max.Value()
	require.True(t, ok)
	assert.GreaterOrEqual(t, max, 0.020, "the connection held 20 ms")

	db.SetMaxOpenConns(0)
	_, hasMax := rig.metrics(t)[dbconv.ClientConnectionMaxObservable{}.Name()]
	assert.False(t, hasMax, "an unlimited pool has no max")
}

// A driver wrapped by WrapDriver has counts, but no max: sqlpool never
// sees its *sql.DB.
func TestPoolMetricsOfAWrappedDriver(t *testing.T) {
	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	d := sqlpool.WrapDriver(&sqlite.Driver{}, sqlpool.WithTracker(tr))
	db := sql.OpenDB(dsnConnector{"file:" + url.PathEscape(t.Name()) + "?mode=memory&cache=shared", d})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(3)
	require.NoError(t, db.PingContext(t.Context()))

	ms := rig.metrics(t)
	assert.Equal(t, map[attribute.Distinct]int64{
		countKey("sqlite", dbconv.ClientConnectionStateUsed): 0,
		countKey("sqlite", dbconv.ClientConnectionStateIdle): 1,
	}, sumOf(t, ms[dbconv.ClientConnectionCountObservable{}.Name()]))
	_, hasMax := ms[dbconv.ClientConnectionMaxObservable{}.Name()]
	assert.False(t, hasMax)
}

// Open names a pool after its data source name's server and database, in
// each driver's form, and never shows the user or password; WithDBSystem
// and WithPoolName set them instead. Open does not connect, so no server
// is needed.
func TestPoolNameFromDSN(t *testing.T) {
	const pw = "pa55@w/rd"
	for _, c := range []struct {
		driver, dsn, pool string
		opts              []sqlpool.Option
	}{
		{"pgx", "postgres://app:" + url.QueryEscape(pw) + "@db.example:5433/orders?sslmode=disable", "db.example:5433/orders", nil},
		{"postgres", "host=db.example port=5433 dbname=orders user=app password='" + pw + "' sslmode=disable", "db.example:5433/orders", nil},
		{"mysql", "app:" + pw + "@tcp(db.example:3307)/orders?parseTime=true", "db.example:3307/orders", nil},
		{"sqlite", "file:orders.db?mode=memory&_pragma=busy_timeout(5000)", "orders.db", nil},
		{"sqlite", ":memory:", "sqlite", nil},
		{"mysql", "app:" + pw + "@tcp(db.example:3307)/orders", "billing", []sqlpool.Option{sqlpool.WithPoolName("billing")}},
	} {
		t.Run(c.driver+"/"+c.pool, func(t *testing.T) {
			rig := newOtelRig(t)
			tr, _ := newTracker(t, rig.options()...)
			db, err := sqlpool.Open(c.driver, c.dsn, append([]sqlpool.Option{sqlpool.WithTracker(tr)}, c.opts...)...)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			count := sumOf(t, rig.metrics(t)[dbconv.ClientConnectionCountObservable{}.Name()])
			assert.Contains(t, count, countKey(c.pool, dbconv.ClientConnectionStateIdle))
			assert.NotContains(t, fmt.Sprint(rig.metrics(t)), "pa55")
		})
	}

	rig := newOtelRig(t)
	tr, _ := newTracker(t, rig.options()...)
	db := backends[1].open(t, tr, sqlpool.WithDBSystem("cockroachdb"))
	require.NoError(t, db.PingContext(t.Context()))
	var attrs []string
	for _, r := range tr.Open() {
		if r.Kind == sqlpool.KindConn || r.Kind == tracker.KindConn {
			a := attrsOf(r.Attributes)
			assert.Equal(t, "cockroachdb", a[semconv.DBSystemNameKey].AsString(), r.Kind)
			attrs = append(attrs, fmt.Sprint(r.Attributes))
		}
	}
	assert.Len(t, attrs, 2, "the driver connection and its socket")
	assert.NotContains(t, strings.Join(attrs, " "), secret)
}

// A query adds no allocation for OpenTelemetry: with an SDK meter provider
// recording use_time, and a query under a context without a span, it
// allocates as much as with no provider at all.
func TestQueryAllocationsWithSDK(t *testing.T) {
	queryAllocs := func(opts ...tracker.Option) float64 {
		tr, _ := newTracker(t, opts...)
		db := backends[3].open(t, tr)
		ctx := context.Background()
		var one int
		return testing.AllocsPerRun(500, func() {
			if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
				t.Fatal(err)
			}
		})
	}
	rig := newOtelRig(t)
	without := queryAllocs()
	with := queryAllocs(rig.options()...)
	assert.Equal(t, without, with, "allocations per query with the SDK")
	_, recorded := rig.metrics(t)[dbconv.ClientConnectionUseTime{}.Name()]
	assert.True(t, recorded, "use_time was recorded")
}

// BenchmarkSelectOneSQLiteOtel runs the SELECT 1 loop through the driver
// alone, through sqlpool with the default (no-op) providers, and through
// sqlpool with an SDK meter provider recording use_time, interleaved in
// one run; each way's ratio to the driver's is reported.
func BenchmarkSelectOneSQLiteOtel(b *testing.B) {
	be := backends[3]
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	plain := tracker.New(tracker.WithLogger(nil))
	defer plain.Close()
	sdk := tracker.New(tracker.WithLogger(nil), tracker.WithMeterProvider(mp))
	defer sdk.Close()
	raw := sql.OpenDB(be.connector(b, nil))
	defer raw.Close()
	wrapped := sqlpool.OpenDB(be.connector(b, nil), sqlpool.WithTracker(plain))
	defer wrapped.Close()
	metered := sqlpool.OpenDB(be.connector(b, nil), sqlpool.WithTracker(sdk))
	defer metered.Close()
	runWays(b, []struct {
		name string
		db   *sql.DB
	}{{"raw", raw}, {"sqlpool", wrapped}, {"sqlpool-sdk", metered}})
}

// db.system.name is derived from each driver's package, on the driver
// connection and on the socket dialed for it.
func TestDBSystemOfEachDriver(t *testing.T) {
	want := map[string]string{"pgx": "postgresql", "pq": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			db := b.open(t, tr)
			require.NoError(t, db.PingContext(t.Context()))
			kinds := []tracker.Kind{sqlpool.KindConn}
			if b.network {
				kinds = append(kinds, tracker.KindConn)
			}
			for _, k := range kinds {
				rs := openOf(tr, k)
				require.Len(t, rs, 1, k)
				assert.Equal(t, want[b.name], attrsOf(rs[0].Attributes)[semconv.DBSystemNameKey].AsString(), k)
			}
		})
	}
}
