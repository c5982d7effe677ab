package nethttp_test

import (
	"testing"
	"time"
)

// interleave runs raw and tracked once per op, alternating which goes
// first, so that load on a shared machine hits both alike, and reports
// raw-ns/op, tracked-ns/op and their ratio, tracked/raw: the overhead
// measured in one run, which two separate benchmarks cannot give on a
// noisy machine.
func interleave(b *testing.B, raw, tracked func()) {
	b.Helper()
	var tRaw, tTracked time.Duration
	n := 0
	for b.Loop() {
		first, second, d1, d2 := raw, tracked, &tRaw, &tTracked
		if n%2 == 1 {
			first, second, d1, d2 = tracked, raw, &tTracked, &tRaw
		}
		t0 := time.Now()
		first()
		t1 := time.Now()
		second()
		*d2 += time.Since(t1)
		*d1 += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tTracked.Nanoseconds())/float64(n), "tracked-ns/op")
	b.ReportMetric(float64(tTracked)/float64(tRaw), "tracked/raw")
}
