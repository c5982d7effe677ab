package stack

import (
	"fmt"
	"testing"
	"time"
)

// Run them with
//
//	go test -run '^$' -bench . -benchmem -count 3 ./internal/stack

// pathLevels call levels of pathA or pathB, chosen by the bits of an index,
// give 1<<pathLevels distinct call paths without as many functions. A path
// is 29 frames deep (14 of pathA or pathB, 15 of pathNext), within
// benchDepth: every path has a logical stack of its own.
const (
	pathLevels = 14
	benchDepth = 32 // the tracker's default
	benchSites = 10_000
)

//go:noinline
func pathA(st *Table, i uint, level int) *Entry { return pathNext(st, i, level) }

//go:noinline
func pathB(st *Table, i uint, level int) *Entry { return pathNext(st, i, level) }

//go:noinline
func pathNext(st *Table, i uint, level int) *Entry {
	if level == 0 {
		return st.Capture(0, benchDepth)
	}
	if i&1 == 0 {
		return pathA(st, i>>1, level-1)
	}
	return pathB(st, i>>1, level-1)
}

// atPath captures on path i of the 1<<pathLevels.
func atPath(st *Table, i int) *Entry { return pathNext(st, uint(i), pathLevels) }

//go:noinline
func pathNoCapture(i uint, level int) int {
	if level == 0 {
		return 0
	}
	if i&1 == 0 {
		return pathNoCaptureA(i>>1, level-1)
	}
	return pathNoCaptureB(i>>1, level-1)
}

//go:noinline
func pathNoCaptureA(i uint, level int) int { return pathNoCapture(i, level) + 1 }

//go:noinline
func pathNoCaptureB(i uint, level int) int { return pathNoCapture(i, level) + 2 }

// addSite adds to st what a capture's miss leaves there, a stack and the
// walked key that leads to it, for a made-up stack k and without
// runtime.Callers, so that a table can be filled with many sites quickly.
func addSite(st *Table, k int) *Entry {
	e := st.intern([]uintptr{uintptr(k) + 1, 1 << 30})
	frames := []uintptr{uintptr(k) + 1, 2 << 30}
	h := st.hashPCs(frames) ^ uint64(benchDepth)<<52
	sh := &st.shards[h%shards]
	sh.mu.Lock()
	sh.walked[h] = &walkedStack{frames: frames, depth: benchDepth, e: e}
	sh.mu.Unlock()
	st.added.Add(1)
	return e
}

// filledTable returns a table holding n made-up sites, all in use, swept
// once so that MaybeSweep counts from there.
func filledTable(n int) *Table {
	st := NewTable()
	for k := range n {
		addSite(st, k)
	}
	st.Sweep()
	return st
}

// BenchmarkCapture is a capture at the end of a 28-frame path:
//
//   - hit/sites=10000: on one of 10,000 distinct paths, each captured before
//     and still in use: the frame walk and the walked key's lookup;
//   - hit/sites=1: on one path over and over, the hot path of a program that
//     opens its connections on one line;
//   - walk-off/sites=10000: the first case with CONNLEAK_STACKWALK=off,
//     runtime.Callers every time;
//   - path-only: the 28 calls without a capture, to subtract.
func BenchmarkCapture(b *testing.B) {
	for _, sites := range []int{benchSites, 1} {
		b.Run(fmt.Sprint("hit/sites=", sites), func(b *testing.B) { benchHits(b, sites) })
	}
	b.Run(fmt.Sprint("walk-off/sites=", benchSites), func(b *testing.B) {
		defer func(was bool) { walkEnabled = was }(walkEnabled)
		walkEnabled = false
		benchHits(b, benchSites)
	})
	b.Run("path-only", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for i := range b.N {
			n += pathNoCapture(uint(i%benchSites), pathLevels)
		}
		sink = n
	})
}

var sink int

func benchHits(b *testing.B, sites int) {
	st := NewTable()
	held := make([]*Entry, sites)
	// The walked key is the whole physical stack: the sites are interned
	// and then hit by the same call instruction.
	for round := range 2 {
		n := sites
		if round == 1 {
			if st.Size() != sites {
				b.Fatalf("%d paths interned %d stacks", sites, st.Size())
			}
			b.ReportAllocs()
			b.ResetTimer()
			n = b.N
		}
		for i := range n {
			e := atPath(st, i%sites)
			if round == 0 {
				held[i] = e
			} else {
				st.Release(e)
			}
		}
	}
	b.StopTimer()
	if walkEnabled && st.callers.Load() != int64(sites) {
		b.Fatalf("%d runtime.Callers for %d sites: not every capture was a hit", st.callers.Load(), sites)
	}
	for _, e := range held {
		st.Release(e)
	}
}

// BenchmarkCaptureMiss captures on a path the table has not seen, in a table
// that already holds 1,000 to 100,000 sites in use: runtime.Callers, then a
// new stack and a new walked key. The cost must not grow with the table: no
// capture scans it. After each batch of held/8 misses (the table grows by
// an eighth at most), the new sites, released, are swept away outside the
// timer, so that the same paths miss again.
func BenchmarkCaptureMiss(b *testing.B) {
	for _, held := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint("held=", held), func(b *testing.B) {
			batch := min(max(held/8, 128), 1<<pathLevels)
			st := filledTable(held)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i > 0 && i%batch == 0 {
					b.StopTimer()
					if i == batch && st.Size() != held+batch {
						b.Fatalf("%d stacks after %d new sites in %d", st.Size(), batch, held)
					}
					st.Sweep()
					b.StartTimer()
				}
				st.Release(atPath(st, i%batch))
			}
			b.StopTimer()
			if st.callers.Load() != int64(b.N) {
				b.Fatalf("%d runtime.Callers for %d captures: not every capture was a miss", st.callers.Load(), b.N)
			}
		})
	}
}

// BenchmarkInternMiss is BenchmarkCaptureMiss without runtime.Callers: a new
// stack into a table of 1,000 to 100,000 in use, the part of a miss whose
// cost would grow with the table if anything scanned it.
func BenchmarkInternMiss(b *testing.B) {
	const batch = 1024
	for _, held := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint("held=", held), func(b *testing.B) {
			st := filledTable(held)
			pcs := []uintptr{0, 3 << 29}
			added := make([]*Entry, 0, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if len(added) == batch {
					b.StopTimer()
					for _, e := range added {
						forget(st, e)
					}
					added = added[:0]
					b.StartTimer()
				}
				pcs[0] = uintptr(len(added)) + 1
				e := st.intern(pcs)
				st.Release(e)
				added = append(added, e)
			}
		})
	}
}

// BenchmarkMaybeSweep is a program that keeps opening new sites and closing
// them, each op a new site given back, with MaybeSweep after every one (the
// poller calls it once a tick, far less often). held sites stay in use
// throughout. A sweep scans the whole table but runs only once the table has
// grown by as much as it held, so its cost per op, sweep-ns/op, stays flat
// however many sites are held.
func BenchmarkMaybeSweep(b *testing.B) {
	for _, held := range []int{0, 1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint("held=", held), func(b *testing.B) {
			st := filledTable(held)
			var inSweep time.Duration
			sweeps := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				st.Release(addSite(st, held+i))
				// MaybeSweep's own test, to time only the calls that sweep:
				// time.Now costs more than the calls that do not.
				if st.added.Load() < max(st.sweepAt.Load(), minSweep) {
					st.MaybeSweep()
					continue
				}
				start := time.Now()
				st.MaybeSweep()
				inSweep += time.Since(start)
				sweeps++
			}
			b.ReportMetric(float64(inSweep.Nanoseconds())/float64(b.N), "sweep-ns/op")
			b.ReportMetric(float64(sweeps), "sweeps")
		})
	}
	b.Run("idle", func(b *testing.B) { // a tick with nothing new: the poller's usual call
		st := filledTable(benchSites)
		b.ReportAllocs()
		for b.Loop() {
			st.MaybeSweep()
		}
	})
}
