package sqlpool_test

import (
	"database/sql"
	"slices"
	"testing"
	"time"
)

// runWays runs the SELECT 1 loop through each way's database in short
// rounds, rotating which way goes first, so that load on a shared machine
// hits them alike. It reports each way's time per query, its ratio to the
// first way's (name/raw: total time against total time), and the median of
// the ratios of the rounds (name/raw-med), which a burst of load on a few
// rounds does not move.
func runWays(b *testing.B, ways []struct {
	name string
	db   *sql.DB
}) {
	const round = 20
	spent := make([]time.Duration, len(ways))
	ratios := make([][]float64, len(ways))
	for _, w := range ways {
		w.db.SetMaxIdleConns(2)
		selectOne(b, w.db, 200) // warm
	}
	b.ResetTimer()
	n, r := 0, 0
	this := make([]time.Duration, len(ways))
	for n < b.N {
		for k := range ways {
			i := (r + k) % len(ways)
			start := time.Now()
			selectOne(b, ways[i].db, round)
			this[i] = time.Since(start)
			spent[i] += this[i]
		}
		for i := 1; i < len(ways); i++ {
			ratios[i] = append(ratios[i], float64(this[i])/float64(this[0]))
		}
		n += round
		r++
	}
	for i, w := range ways {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(n), w.name+"-ns/q")
		if i > 0 {
			b.ReportMetric(float64(spent[i])/float64(spent[0]), w.name+"/raw")
			slices.Sort(ratios[i])
			b.ReportMetric(ratios[i][len(ratios[i])/2], w.name+"/raw-med")
		}
	}
}
