package testutil_test

import (
	"testing"
	"time"

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

// The bar of the design: VerifyNone on a clean test costs at most a tenth of
// goleak.VerifyNone on the same test. Measured here as the best of three
// rounds of each, interleaved, so that both see the same machine.
func TestVerifyNoneCostVsGoleak(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	tr := cleanTest(t)
	rec := &recorder{name: t.Name()}
	perOp := func(n int, f func()) time.Duration {
		start := time.Now()
		for range n {
			f()
		}
		return time.Since(start) / time.Duration(n)
	}
	best := func(a, b time.Duration) time.Duration {
		if a == 0 || b < a {
			return b
		}
		return a
	}
	var ours, theirs time.Duration
	for range 3 {
		ours = best(ours, perOp(2000, func() { testutil.VerifyNone(rec, testutil.WithTracker(tr)) }))
		theirs = best(theirs, perOp(100, func() { goleak.VerifyNone(rec, benchGoleakOpts...) }))
	}
	if rec.failed() {
		t.Fatalf("the state was not clean:\n%s", rec.text())
	}
	ratio := float64(ours) / float64(theirs)
	t.Logf("VerifyNone %v/op, goleak.VerifyNone %v/op: ratio %.4f (1/%.0f)", ours, theirs, ratio, 1/ratio)
	if ratio > 0.1 {
		t.Errorf("VerifyNone costs %.3f of goleak.VerifyNone on a clean test; the bar is 0.1", ratio)
	}
}
