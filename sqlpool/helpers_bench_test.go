package sqlpool_test

import (
	"database/sql"
	"testing"
	"time"
)

func runWays(b *testing.B, ways []struct {
	name string
	db   *sql.DB
}) {
	const round = 200
	spent := make([]time.Duration, len(ways))
	for _, w := range ways {
		w.db.SetMaxIdleConns(2)
		selectOne(b, w.db, round) // warm
	}
	b.ResetTimer()
	n := 0
	for n < b.N {
		for i, w := range ways {
			start := time.Now()
			selectOne(b, w.db, round)
			spent[i] += time.Since(start)
		}
		n += round
	}
	for i, w := range ways {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(n), w.name+"-ns/q")
		if i > 0 {
			b.ReportMetric(float64(spent[i])/float64(spent[0]), w.name+"/raw")
		}
	}
}
