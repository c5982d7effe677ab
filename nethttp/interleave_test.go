package nethttp_test

import (
	"testing"
	"time"
)

// interleave runs each of fns once per op, rotating which goes first so that
// load on a shared machine hits them alike, and reports each one's ns/op
// under its name and its ratio to the first, the raw case, as name/raw: the
// overhead measured in one run, which separate benchmarks cannot give on a
// noisy machine.
func interleave(b *testing.B, names []string, fns []func()) {
	b.Helper()
	for _, fn := range fns {
		fn() // connections dialed and servers warm before the clock runs
	}
	b.ReportAllocs()
	total := make([]time.Duration, len(fns))
	n := 0
	for b.Loop() {
		for k := range fns {
			i := (n + k) % len(fns)
			t0 := time.Now()
			fns[i]()
			total[i] += time.Since(t0)
		}
		n++
	}
	for i, name := range names {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(n), name+"-ns/op")
		if i > 0 {
			b.ReportMetric(float64(total[i])/float64(total[0]), name+"/raw")
		}
	}
}
