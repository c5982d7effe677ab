package testutil_test

import (
	"testing"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"go.uber.org/goleak"
)

// cleanTest is the state after a clean test: it dialed, accepted and closed
// a few tracked loopback connections and stopped its server.
func cleanTest(tb testing.TB) *tracker.Tracker {
	tr := tracker.New(tracker.WithLogger(nil))
	tb.Cleanup(func() { tr.Close() })
	srv := newServerTB(tb)
	for range 10 {
		c := dialTB(tb, tr, srv.addr())
		c.Close()
	}
	srv.hangUp()
	return tr
}

// benchGoleakOpts are what goleak needs to pass on the same clean state:
// the tracker's poller, and (in a benchmark) the goroutines of testing.B,
// which goleak's built-in filters know only for testing.T.
var benchGoleakOpts = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/connleak/connleak/tracker.(*Tracker).run"),
	goleak.IgnoreTopFunction("testing.(*B).run1"),
	goleak.IgnoreTopFunction("testing.(*B).doBench"),
}

// BenchmarkVerifyNoneClean compares testutil.VerifyNone (sockets only) with
// goleak.VerifyNone on the same clean test, in the same run:
//
//	go test -run '^$' -bench VerifyNoneClean -benchmem -count 5 ./testutil
func BenchmarkVerifyNoneClean(b *testing.B) {
	tr := cleanTest(b)
	b.Run("connleak", func(b *testing.B) {
		for b.Loop() {
			testutil.VerifyNone(b, testutil.WithTracker(tr))
		}
	})
	b.Run("goleak", func(b *testing.B) {
		for b.Loop() {
			goleak.VerifyNone(b, benchGoleakOpts...)
		}
	})
}
