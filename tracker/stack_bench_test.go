package tracker

import (
	"fmt"
	"testing"
	"time"
)

// trackLevels call levels of trackA or trackB, chosen by the bits of an
// index, give 1<<trackLevels distinct open sites without as many functions:
// 29 frames (14 of trackA or trackB, 15 of trackNext), each path a stack of
// its own within DefaultStackDepth.
const (
	trackLevels = 14
	trackSites  = 10_000
)

//go:noinline
func trackA(tr *Tracker, i uint, level int) *Handle { return trackNext(tr, i, level) }

//go:noinline
func trackB(tr *Tracker, i uint, level int) *Handle { return trackNext(tr, i, level) }

//go:noinline
func trackNext(tr *Tracker, i uint, level int) *Handle {
	if level == 0 {
		return tr.Track("bench")
	}
	if i&1 == 0 {
		return trackA(tr, i>>1, level-1)
	}
	return trackB(tr, i>>1, level-1)
}

// BenchmarkTrackDistinctSites tracks and closes a resource opened at one of
// 10,000 distinct sites in turn, every site seen before, against one site
// over and over: the open-site capture must cost about the same however many
// sites a program has. Both go through the same 29 frames.
//
//	go test -run '^$' -bench TrackDistinctSites -benchmem -count 3 ./tracker
func BenchmarkTrackDistinctSites(b *testing.B) {
	for _, sites := range []int{trackSites, 1} {
		b.Run(fmt.Sprint("sites=", sites), func(b *testing.B) {
			tr := New(WithPollInterval(time.Hour), WithLogger(nil))
			b.Cleanup(func() { tr.Close() })
			// A capture finds its site again only from the same call
			// instruction: the first round, untimed, makes every site known
			// through the call the timed round makes.
			for round := range 2 {
				n := sites
				if round == 1 {
					if got := tr.stacks.Size(); got != sites {
						b.Fatalf("%d sites interned %d stacks", sites, got)
					}
					b.ReportAllocs()
					b.ResetTimer()
					n = b.N
				}
				for i := range n {
					trackNext(tr, uint(i%sites), trackLevels).Close()
				}
			}
		})
	}
}
