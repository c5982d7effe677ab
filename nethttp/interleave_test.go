package nethttp_test

import (
	"slices"
	"testing"
	"time"
)

// interleaveRound is how many times each case runs in a row within a round.
const interleaveRound = 10

// interleave runs each of fns in short rounds, rotating which goes first,
// so that load on a shared machine hits them alike. It reports each one's
// ns/op under its name, its ratio to the first, the raw case, as name/raw
// (total time against total time), and the median of the rounds' ratios as
// name/raw-med, which a burst of load on a few rounds does not move: the
// overhead measured in one run, which separate benchmarks cannot give on a
// noisy machine.
func interleave(b *testing.B, names []string, fns []func()) {
	b.Helper()
	for _, fn := range fns {
		fn() // connections dialed and servers warm before the clock runs
	}
	b.ReportAllocs()
	total := make([]time.Duration, len(fns))
	ratios := make([][]float64, len(fns))
	this := make([]time.Duration, len(fns))
	n, round := 0, 0
	for n < b.N {
		for k := range fns {
			i := (round + k) % len(fns)
			t0 := time.Now()
			for range interleaveRound {
				fns[i]()
			}
			this[i] = time.Since(t0)
			total[i] += this[i]
		}
		for i := 1; i < len(fns); i++ {
			ratios[i] = append(ratios[i], float64(this[i])/float64(this[0]))
		}
		n += interleaveRound
		round++
	}
	for i, name := range names {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(n), name+"-ns/op")
		if i > 0 {
			b.ReportMetric(float64(total[i])/float64(total[0]), name+"/raw")
			slices.Sort(ratios[i])
			b.ReportMetric(ratios[i][len(ratios[i])/2], name+"/raw-med")
		}
	}
}
