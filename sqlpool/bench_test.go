package sqlpool_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// selectOne runs SELECT 1 through db n times.
func selectOne(b *testing.B, db *sql.DB, n int) {
	ctx := context.Background()
	var one int
	for range n {
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSelectOne runs the SELECT 1 loop on backend b three ways in one run,
// interleaved in rounds so that a noisy machine slows each alike: the
// driver alone, through sqlpool, and through otelsql with no-op providers.
// It reports each way's time per query and its ratio to the driver's.
func benchSelectOne(b *testing.B, be backend) {
	be.need(b)
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	raw := sql.OpenDB(be.connector(b, nil))
	defer raw.Close()
	wrapped := sqlpool.OpenDB(be.connector(b, tr.WrapDialer(nil)), sqlpool.WithTracker(tr))
	defer wrapped.Close()
	otel := otelsql.OpenDB(be.connector(b, nil),
		otelsql.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelsql.WithMeterProvider(metricnoop.NewMeterProvider()))
	defer otel.Close()
	runWays(b, []struct {
		name string
		db   *sql.DB
	}{{"raw", raw}, {"sqlpool", wrapped}, {"otelsql", otel}})
}

func BenchmarkSelectOneSQLite(b *testing.B)     { benchSelectOne(b, backends[3]) }
func BenchmarkSelectOnePostgreSQL(b *testing.B) { benchSelectOne(b, backends[0]) }
