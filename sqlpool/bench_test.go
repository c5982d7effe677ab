package sqlpool_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	_ "modernc.org/sqlite"
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

// BenchmarkSelectOne interleaves the ways in rounds, so that a noisy
// machine slows each alike, and reports each one's time per query.
func BenchmarkSelectOneSQLite(b *testing.B) {
	raw, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	wrapped, err := sqlpool.Open("sqlite", "file::memory:", sqlpool.WithTracker(tr))
	if err != nil {
		b.Fatal(err)
	}
	defer wrapped.Close()
	ways := []struct {
		name string
		db   *sql.DB
	}{{"raw", raw}, {"sqlpool", wrapped}}
	runWays(b, ways)
}
