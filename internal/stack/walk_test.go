package stack

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// site captures through st and asks runtime.Callers for the same skip and
// depth, both from one line: with skip 0 the innermost frame of both is this
// line, and every frame above it is the same return address.
//
//go:noinline
func site(st *Table, skip, depth int) (*Entry, []uintptr) {
	return st.Capture(skip, depth), callersAt(skip, depth)
}

//go:noinline
func callersAt(skip, depth int) []uintptr {
	buf := make([]uintptr, depth)
	return buf[:runtime.Callers(skip+2, buf)] // +runtime.Callers, +callersAt: skip 0 is site
}

func framesOf(pcs []uintptr) []string {
	var out []string
	for _, f := range Frames(pcs) {
		out = append(out, fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line))
	}
	return out
}

// capturePath calls at once, from the call path a case is about, and
// returns what at returned.
type capturePath func(at func() (*Entry, []uintptr)) (*Entry, []uintptr)

func direct(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

// recurse puts n frames of its own between the test and the capture.
//
//go:noinline
func recurse(n int, at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
	if n == 0 {
		return at()
	}
	return recurse(n-1, at)
}

// inlinable is small enough for the compiler to inline: its frame exists
// only in the inlining tables, which the walk does not read.
func inlinable(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

type capturer struct{ n int }

//go:noinline
func (c capturer) method(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

// callValue calls f through a func value the compiler cannot see into, so
// that a method value runs under its generated wrapper.
//
//go:noinline
func callValue(f capturePath, at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return f(at) }

type viaInterface interface {
	capture(at func() (*Entry, []uintptr)) (*Entry, []uintptr)
}

// A value receiver called through a pointer in an interface runs under a
// generated pointer wrapper.
//
//go:noinline
func (c capturer) capture(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

// callInterface keeps the compiler from calling v's method directly.
//
//go:noinline
func callInterface(v viaInterface, at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
	return v.capture(at)
}

//go:noinline
func generic[T any](_ T, at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

type genericBox[T any] struct{ _ T }

//go:noinline
func (b genericBox[T]) capture(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return at() }

// captureCases are the call paths a capture can be made on. Each runs its
// path twice from one line: the first capture misses the walked keys and
// runs runtime.Callers, the second finds the first's key (unless the walk
// refuses the stack) and must return the same stack.
type captureCase struct {
	name        string
	skip, depth int
	path        capturePath
	// fallback: the walk refuses the stack, so every capture runs
	// runtime.Callers.
	fallback bool
	noWalk   bool // with walkEnabled false, as CONNLEAK_STACKWALK=off makes it
}

var captureCases = []captureCase{
	{name: "direct", depth: 32, path: direct},
	{name: "skip 1", skip: 1, depth: 32, path: direct},
	{name: "skip 3", skip: 3, depth: 32, path: direct},
	{name: "depth 1", depth: 1, path: direct},
	{name: "skip 2 depth 2", skip: 2, depth: 2, path: direct},
	{name: "depth MaxDepth on a shallow stack", depth: MaxDepth, path: direct},
	{name: "depth 100 over 80 frames", depth: 100, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return recurse(80, at) // more than captureLogical's 64 on its stack, less than maxWalk
	}},
	{name: "skip 10 depth 70 over 80 frames", skip: 10, depth: 70, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return recurse(80, at)
	}},
	{name: "deeper than a walk", depth: 32, fallback: true, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return recurse(maxWalk, at)
	}},
	{name: "deeper than a walk at depth MaxDepth", depth: MaxDepth, fallback: true, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return recurse(maxWalk+20, at)
	}},
	{name: "inlined caller", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return inlinable(at)
	}},
	{name: "method", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return capturer{}.method(at)
	}},
	{name: "method value", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return callValue(capturer{}.method, at) // through capturer.method-fm
	}},
	{name: "pointer wrapper through an interface", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return callInterface(&capturer{}, at) // through (*capturer).capture
	}},
	{name: "closure", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		calls := 0
		return callValue(func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
			calls++ // a closure with a context
			return at()
		}, at)
	}},
	{name: "deferred call", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		func() {
			defer func() { e, w = at() }() // open-coded: called from the function's exit
		}()
		return e, w
	}},
	{name: "deferred call run by deferreturn", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		func() {
			for range 1 {
				defer func() { e, w = at() }() // in a loop: a defer record, not open-coded
			}
		}()
		return e, w
	}},
	{name: "deferred call while panicking", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		func() {
			defer func() {
				e, w = at() // gopanic's frame is on the stack
				recover()
			}()
			panic("unwinding")
		}()
		return e, w
	}},
	{name: "deferred call after recover", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		func() {
			defer func() {
				recover()
				e, w = at()
			}()
			panic("unwinding")
		}()
		return e, w
	}},
	{name: "recovering from a nil dereference", depth: 32, fallback: true, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		func() {
			defer func() {
				recover()
				e, w = at() // runtime.sigpanic's frame: the walk stops there
			}()
			var p *capturer
			_ = p.n
		}()
		return e, w
	}},
	{name: "fresh goroutine", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		var wg sync.WaitGroup
		wg.Go(func() { e, w = at() })
		wg.Wait()
		return e, w
	}},
	{name: "go statement", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			e, w = at()
		}()
		<-done
		return e, w
	}},
	{name: "deferred call run by runtime.Goexit", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		var wg sync.WaitGroup
		wg.Go(func() {
			defer func() { e, w = at() }()
			runtime.Goexit()
		})
		wg.Wait()
		return e, w
	}},
	{name: "reflect.Value.Call", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		out := reflect.ValueOf(capturer.method).Call([]reflect.Value{reflect.ValueOf(capturer{}), reflect.ValueOf(at)})
		return out[0].Interface().(*Entry), out[1].Interface().([]uintptr)
	}},
	{name: "reflect.MakeFunc", depth: 32, path: func(at func() (*Entry, []uintptr)) (e *Entry, w []uintptr) {
		var f func()
		reflect.ValueOf(&f).Elem().Set(reflect.MakeFunc(reflect.TypeOf(f), func([]reflect.Value) []reflect.Value {
			e, w = at()
			return nil
		}))
		f()
		return e, w
	}},
	{name: "generic function", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return generic(1, at)
	}},
	{name: "generic function value", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		f := generic[string]
		return callValue(func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) { return f("", at) }, at)
	}},
	{name: "generic method", depth: 32, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return genericBox[[]byte]{}.capture(at)
	}},
	{name: "walk off", depth: 32, noWalk: true, fallback: true, path: direct},
	{name: "walk off skip 2 depth 100", skip: 2, depth: 100, noWalk: true, fallback: true, path: func(at func() (*Entry, []uintptr)) (*Entry, []uintptr) {
		return recurse(80, at)
	}},
}

// Every path through Capture returns what runtime.Callers gives for the same
// skip and depth: the walked miss, the walked hit (found among the site's
// recent keys, or, with those forgotten, in the map), and each fallback.
func TestCaptureMatchesRuntimeCallers(t *testing.T) {
	for _, c := range captureCases {
		for _, fromMap := range []bool{false, true} {
			name := c.name
			if fromMap {
				if c.noWalk {
					continue
				}
				name += " from the map"
			}
			t.Run(name, func(t *testing.T) { testCaptureMatchesRuntimeCallers(t, c, fromMap) })
		}
	}
}

func testCaptureMatchesRuntimeCallers(t *testing.T, c captureCase, fromMap bool) {
	{
		{
			if c.noWalk {
				defer func(was bool) { walkEnabled = was }(walkEnabled)
				walkEnabled = false
			}
			fallback := c.fallback || !walkEnabled
			st := NewTable()
			at := func() (*Entry, []uintptr) { return site(st, c.skip, c.depth) }
			var got [2]*Entry
			var want [2][]uintptr
			var callers [2]int64
			for i := range got { // one physical path both times
				if fromMap {
					forgetRecent(st)
				}
				got[i], want[i] = c.path(at)
				callers[i] = st.callers.Load()
			}
			for i, e := range got {
				require.NotNil(t, e)
				assert.Equal(t, framesOf(want[i]), framesOf(e.pcs), "capture %d", i)
				// Past the line of site, the very same return addresses.
				assert.Equal(t, want[i][min(1, len(want[i])):], e.pcs[min(1, len(e.pcs)):], "capture %d", i)
			}
			assert.LessOrEqual(t, len(got[0].pcs), c.depth)
			if c.skip > 0 {
				assert.Equal(t, want[0], got[0].pcs)
			}
			assert.Same(t, got[0], got[1], "a second capture on one path finds the first's stack")
			assert.Equal(t, int64(1), callers[0], "the first capture runs runtime.Callers")
			if fallback {
				assert.Equal(t, int64(2), callers[1], "a refused walk runs runtime.Callers every time")
				assert.Zero(t, walkedKeys(st))
			} else {
				assert.Equal(t, int64(1), callers[1], "the second capture is a walked hit")
				assert.Equal(t, 1, walkedKeys(st))
			}
			assert.Equal(t, int64(2), got[0].Refs())
		}
	}
}

// A site's recent keys find its stack without the map, and a site called
// from more paths than it keeps keys for still gives each path its own
// stack, every time.
func TestRecentKeys(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	at := func() (*Entry, []uintptr) { return site(st, 0, 32) }
	var twice [2]*Entry
	var want []uintptr
	for i := range twice {
		twice[i], want = recurse(3, at)
		for i := range st.shards {
			clear(st.shards[i].walked)
		}
	}
	assert.Same(t, twice[0], twice[1], "found among the recent keys, with the map empty")
	assert.Equal(t, framesOf(want), framesOf(twice[1].pcs))
	assert.Equal(t, int64(1), st.callers.Load(), "no runtime.Callers for the second")

	paths := 3 * recentWays
	var got [3][]*Entry
	for round := range got {
		for p := range paths {
			e, want := recurse(p, at)
			require.NotNil(t, e)
			require.Equal(t, framesOf(want), framesOf(e.pcs), "round %d, path %d", round, p)
			got[round] = append(got[round], e)
		}
	}
	for round := range got {
		for p := range paths {
			assert.Same(t, got[0][p], got[round][p], "round %d, path %d", round, p)
			for q := range p {
				assert.NotSame(t, got[round][q], got[round][p])
			}
		}
	}
}

// A site that many call paths take in turn gets the right stack for each,
// and a site whose lookups kept missing looks once in recentThrottle
// captures, writes its ways only then, and finds its keys again once one
// path repeats.
func TestRecentKeysThrottle(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	at := func() (*Entry, []uintptr) { return site(st, 0, 32) }
	for round := range 4 {
		for p := range 4 * recentWays {
			e, want := recurse(p, at)
			require.Equal(t, framesOf(want), framesOf(e.pcs), "round %d, path %d", round, p)
		}
	}

	// One path, in a site made to look as if it had missed for a while.
	forgetRecent(st)
	var set *recentSet
	var first *Entry
	for i := range 2*recentThrottle + 1 {
		e, want := recurse(2, at)
		require.Equal(t, framesOf(want), framesOf(e.pcs))
		if i == 0 {
			first = e
			for k := range st.recent {
				for w := range st.recent[k].ways {
					if x := st.recent[k].ways[w].Load(); x != nil && x.e == e {
						set = &st.recent[k]
					}
				}
			}
			require.NotNil(t, set)
			for w := range set.ways {
				set.ways[w].Store(nil)
			}
			set.misses.Store(recentThrottle + 1)
			continue
		}
		require.Same(t, first, e)
		written := false
		for w := range set.ways {
			written = written || set.ways[w].Load() != nil
		}
		switch {
		case i < recentThrottle:
			assert.False(t, written, "capture %d: not looking, not writing", i)
			assert.Equal(t, uint32(recentThrottle+1+i), set.misses.Load())
		case i == recentThrottle:
			assert.True(t, written, "capture %d looked, missed and wrote", i)
		}
	}
	assert.Zero(t, set.misses.Load(), "found again within two throttle periods")
}

// Captures share an interned stack exactly when runtime.Callers gives them the
// same program counters, whatever physical path led there.
func TestDistinctPathsGetDistinctStacks(t *testing.T) {
	st := NewTable()
	at := func() (*Entry, []uintptr) { return site(st, 0, MaxDepth) }
	var got []*Entry
	var want [][]uintptr
	var names []string
	for _, c := range captureCases {
		if !c.noWalk {
			e, w := c.path(at)
			got, want = append(got, e), append(want, w[1:]) // past the line of site
			names = append(names, c.name)
		}
	}
	for i := range got {
		for j := range i {
			assert.Equal(t, slices.Equal(want[i], want[j]), got[i] == got[j], "%s and %s", names[i], names[j])
		}
	}
}

//go:noinline
func genericSite[T any](st *Table, depth int) (*Entry, []uintptr) {
	return site(st, 1, depth) // from genericSite's own frame
}

// The instantiations of a generic function share code by the shape of their
// type arguments: int and string get code of their own, two pointer types
// one. A capture must tell apart exactly the instantiations that
// runtime.Callers tells apart, here called through func values from one
// line, with their frames (named alike: genericSite[...]) alone in the
// stack or followed by the caller's.
func TestGenericInstantiationsAtOneSite(t *testing.T) {
	for _, depth := range []int{1, 32} {
		t.Run(fmt.Sprint("depth ", depth), func(t *testing.T) {
			st := NewTable()
			fns := []func(*Table, int) (*Entry, []uintptr){
				genericSite[int], genericSite[string], genericSite[*capturer], genericSite[*faulty],
			}
			var got [2][4]*Entry
			var want [2][4][]uintptr
			for round := range got { // the second round is a walked hit
				for i, f := range fns {
					got[round][i], want[round][i] = f(st, depth)
				}
			}
			for round := range got {
				for i, e := range got[round] {
					require.NotNil(t, e)
					assert.Equal(t, want[round][i], e.pcs, "instantiation %d", i)
					assert.Same(t, got[0][i], e)
					for j := range i {
						assert.Equal(t, slices.Equal(want[round][i], want[round][j]), e == got[round][j],
							"instantiations %d and %d", i, j)
					}
				}
			}
			assert.NotEqual(t, want[0][0], want[0][1], "int and string have code of their own")
			assert.Equal(t, want[0][2], want[0][3], "two pointer types share theirs")
		})
	}
}

// forget does to an entry what Sweep does to an unused one, and only that,
// without Sweep's scan of the whole table. It reports whether the entry was
// unused.
func forget(st *Table, e *Entry) bool {
	sh := &st.shards[e.hash%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !e.refs.CompareAndSwap(0, sweptRefs) {
		return false
	}
	delete(sh.m, e.hash)
	return true
}

// A walked key whose stack has been forgotten is not a hit: the capture
// interns the stack afresh and the key then leads to the new entry. Sweep
// visits the shards in turn, so a walked key in a shard it has passed keeps
// pointing to an entry forgotten in a later one until the next sweep.
func TestWalkedKeyOfAForgottenStack(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	var got [3]*Entry
	var want [3][]uintptr
	var callers [3]int64
	for i := range got {
		got[i], want[i] = site(st, 0, 32)
		callers[i] = st.callers.Load()
		if i == 0 {
			st.Release(got[0])
			require.True(t, forget(st, got[0]))
		}
	}
	assert.Negative(t, got[0].Refs(), "never handed out again")
	assert.NotSame(t, got[0], got[1])
	assert.Same(t, got[1], got[2])
	assert.Equal(t, []int64{1, 2, 2}, callers[:], "a miss, a miss on the stale key, then a hit")
	assert.Equal(t, int64(2), got[1].Refs())
	for i := range got {
		assert.Equal(t, framesOf(want[i]), framesOf(got[i].pcs))
	}
	assert.Equal(t, 1, walkedKeys(st))
	assert.Equal(t, 1, st.Size())
}

// Two physical paths whose keys hash alike are told apart by their frames:
// the second path misses every time rather than take the first one's stack.
func TestWalkedKeyCollision(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	at := func() (*Entry, []uintptr) { return site(st, 0, 32) }
	var got [3][2]*Entry
	var want [3][2][]uintptr
	var callers [3]int64
	var w0 *walkedStack
	var key1 uint64
	for round := range got {
		for path := range 2 {
			forgetRecent(st) // the walked keys of the map are the subject
			got[round][path], want[round][path] = recurse(path, at)
		}
		callers[round] = st.callers.Load()
		if round > 0 {
			continue
		}
		// Make path 1's key lead to path 0's walked stack, as a collision
		// would.
		for i := range st.shards {
			for k, w := range st.shards[i].walked {
				if w.e == got[0][0] {
					w0 = w
				} else {
					key1 = k
				}
			}
		}
		require.NotNil(t, w0)
		st.shards[key1%shards].walked[key1] = w0
	}
	for round := range got {
		for path := range 2 {
			assert.Equal(t, framesOf(want[round][path]), framesOf(got[round][path].pcs))
			assert.Same(t, got[0][path], got[round][path])
		}
	}
	require.NotSame(t, got[0][0], got[0][1])
	assert.Equal(t, []int64{2, 3, 4}, callers[:], "path 0 hits, path 1 misses every time")
	assert.Same(t, w0, st.shards[key1%shards].walked[key1], "the key in place, still in use, is kept")
}

// forgetRecent empties st's remembered keys of recent captures, so that
// the next capture of each site looks in the map.
func forgetRecent(st *Table) {
	for i := range st.recent {
		st.recent[i].misses.Store(0)
		for j := range st.recent[i].ways {
			st.recent[i].ways[j].Store(nil)
		}
	}
}

// Captures on many goroutines, releases and sweeps all at once: a capture
// never returns an entry the table has forgotten, and always the stack
// runtime.Callers gives. Run it with -race.
func TestCaptureConcurrentWithSweep(t *testing.T) {
	st := NewTable()
	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				st.Sweep()
				runtime.Gosched()
			}
		}
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				e, want := recurse((g+i)%4, func() (*Entry, []uintptr) { return site(st, 0, 32) })
				if !assert.Positive(t, e.Refs()) || !assert.Equal(t, framesOf(want), framesOf(e.pcs)) {
					return
				}
				st.Release(e)
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()
	st.Sweep()
	assert.Zero(t, st.Size(), "every reference was given back")
	assert.Zero(t, walkedKeys(st))
}

type faulty struct{ n int }

// loadLeaf keeps no frame: it saves no frame pointer and pushes no return
// address of its own.
//
//go:noinline
func loadLeaf(p *faulty) int { return p.n }

// A fault injects a call to runtime.sigpanic into the faulting function. When
// that function keeps no frame, the frame-pointer chain goes from sigpanic's
// frame straight to its caller's caller: the line that called it is on the
// stack only where runtime.Callers looks. The walk must stop at sigpanic, or
// two lines that fault the same way would share the first one's stack.
func TestCaptureAfterAFaultInAFramelessFunction(t *testing.T) {
	st := NewTable()
	at := func() (*Entry, []uintptr) { return site(st, 0, 32) }
	var got [2]*Entry
	var want [2][]uintptr
	for i := range got {
		func() {
			defer func() {
				recover()
				got[i], want[i] = at()
			}()
			if i == 0 {
				loadLeaf(nil)
			} else {
				loadLeaf(nil) // another line of the same function
			}
		}()
	}
	for i := range got {
		require.NotNil(t, got[i])
		assert.Equal(t, framesOf(want[i]), framesOf(got[i].pcs))
	}
	assert.NotSame(t, got[0], got[1])
	assert.Zero(t, walkedKeys(st), "the walk refuses a stack with a signal's frame")
}

func walkedKeys(st *Table) int {
	n := 0
	for i := range st.shards {
		n += len(st.shards[i].walked)
	}
	return n
}

// Method wrappers are physical frames that runtime.Callers hides. Two paths
// that differ only beyond such frames must still get their own stacks, even
// at a depth that the wrappers would push the difference out of a short key.
type viaWrapper interface{ capture() *Entry }

type wrapperTarget struct{ st *Table }

// A value receiver: called through a *wrapperTarget, it runs under a
// generated pointer wrapper.
//
//go:noinline
func (w wrapperTarget) capture() *Entry { return w.st.Capture(0, 2) }

type embedsInterface struct{ viaWrapper } // (*embedsInterface).capture is a second wrapper

//go:noinline
func throughWrapperA(v viaWrapper) *Entry { return v.capture() }

//go:noinline
func throughWrapperB(v viaWrapper) *Entry { return v.capture() }

func TestWalkedCaptureSeesPastHiddenWrappers(t *testing.T) {
	st := NewTable()
	v := &embedsInterface{&wrapperTarget{st}}
	for range 2 { // the second round finds the walked keys
		a, b := throughWrapperA(v), throughWrapperB(v)
		require.NotNil(t, a)
		require.NotNil(t, b)
		require.NotSame(t, a, b)
		assert.Contains(t, framesOf(a.pcs)[1], "throughWrapperA")
		assert.Contains(t, framesOf(b.pcs)[1], "throughWrapperB")
	}
}

// The skip and depth are part of a walked key: one call path captured with
// several of them gets the stack runtime.Callers gives for each, first and
// second time.
func TestWalkedCaptureRespectsSkipAndDepth(t *testing.T) {
	st := NewTable()
	configs := []struct{ skip, depth int }{{0, 2}, {0, 8}, {1, 8}, {2, 1}, {0, MaxDepth}}
	var got [2][5]*Entry
	var want [2][5][]uintptr
	for round := range got {
		for i, c := range configs {
			got[round][i], want[round][i] = site(st, c.skip, c.depth) // one call for all
		}
	}
	for i, c := range configs {
		require.NotNil(t, got[0][i])
		assert.Same(t, got[0][i], got[1][i], "skip %d depth %d finds its own stack again", c.skip, c.depth)
		assert.Equal(t, framesOf(want[1][i]), framesOf(got[1][i].pcs), "skip %d depth %d", c.skip, c.depth)
	}
	if walkEnabled {
		assert.Equal(t, len(configs), walkedKeys(st))
	}
}

func TestWalkFramesEndsAtTheGoroutineStart(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	var n int
	var ok bool
	buf := make([]uintptr, maxWalk)
	var wg sync.WaitGroup
	wg.Go(func() { n, ok = walkNow(buf) })
	wg.Wait()
	require.True(t, ok)
	require.Less(t, n, maxWalk, "a fresh goroutine's stack is shallow")
	assert.Equal(t, pcGoroutineStart, classifyPC(buf[n-1]))
	last := runtime.FuncForPC(buf[n-1] - 1)
	assert.Equal(t, "runtime.goexit", last.Name())
	assert.True(t, slices.ContainsFunc(buf[:n], func(pc uintptr) bool {
		return runtime.FuncForPC(pc-1).Name() == "sync.(*WaitGroup).Go.func1"
	}), "the walk passes through the goroutine's entry")
}

//go:noinline
func walkNow(buf []uintptr) (int, bool) { return walkFrames(framePointer(), buf, nil) }

func TestClassifyPC(t *testing.T) {
	assert.Equal(t, pcUnknown, classifyPC(0))
	assert.Equal(t, pcUnknown, classifyPC(1), "not in the function table")
	pc, _, _, ok := runtime.Caller(0)
	require.True(t, ok)
	assert.Equal(t, pcGo, classifyPC(pc+1))
	assert.Equal(t, pcGo, classifyPC(pc+1), "cached")
	for name, want := range map[string]pcClass{
		"runtime.goexit":             pcGoroutineStart,
		"runtime.cgocallbackg1":      pcUnknown,
		"runtime.systemstack":        pcUnknown,
		"runtime.systemstack_switch": pcUnknown,
		"runtime.mcall":              pcUnknown,
		"runtime.sigpanic":           pcUnknown,
		"runtime.gopanic":            pcGo, // deferred calls run on the same stack
		"runtime.main":               pcGo,
		"main.main":                  pcGo,
	} {
		assert.Equal(t, want, classifyFunc(name), name)
	}
}

// The walk stops, and the capture falls back to runtime.Callers, at a frame
// it cannot trust. The frames here are laid out by hand in memory, as amd64
// lays them out: the saved frame pointer, then the return address.
func TestWalkFramesRejectsUntrustedFrames(t *testing.T) {
	pc, _, _, ok := runtime.Caller(0)
	require.True(t, ok)
	goPC := pc + 1
	goexitPC := goroutineStart()
	if canWalkFrames {
		require.Equal(t, pcGoroutineStart, classifyPC(goexitPC))
	}

	mem := make([]uintptr, 8)
	at := func(i int) uintptr { return uintptr(unsafe.Pointer(&mem[i])) }
	walk := func() (int, bool) {
		return walkFrames(unsafe.Pointer(&mem[0]), make([]uintptr, 8), nil)
	}
	chain := func() {
		mem[0], mem[1] = at(2), goPC
		mem[2], mem[3] = at(4), goPC
		mem[4], mem[5] = 0, goexitPC
	}

	chain()
	n, ok := walk()
	if canWalkFrames {
		assert.True(t, ok)
		assert.Equal(t, 3, n, "two Go frames, then the goroutine's start")
	}
	chain()
	mem[3] = 1 // a return address into no Go function (C code, say)
	_, ok = walk()
	assert.False(t, ok)
	chain()
	mem[2] = at(0) // a frame pointer that goes back down the stack
	_, ok = walk()
	assert.False(t, ok)
	chain()
	mem[2] = at(4) + maxFrameSize // a step too large to be one frame
	_, ok = walk()
	assert.False(t, ok)
	runtime.KeepAlive(mem)
}

// A walk notes the step to each next frame, and a remembered key matches the
// frames only where every return address and every link is as remembered.
// The frames are laid out by hand, as in the test above, with frames of
// different sizes.
func TestWalkedKeyMatchesOnlyItsFrames(t *testing.T) {
	if !canWalkFrames {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	pc, _, _, ok := runtime.Caller(0)
	require.True(t, ok)
	goPC := pc + 1
	goexitPC := goroutineStart()
	require.Equal(t, pcGoroutineStart, classifyPC(goexitPC))

	mem := make([]uintptr, 12)
	at := func(i int) uintptr { return uintptr(unsafe.Pointer(&mem[i])) }
	chain := func() {
		mem[0], mem[1] = at(2), goPC
		mem[2], mem[3] = at(8), goPC // a larger frame
		mem[8], mem[9] = 0, goexitPC
	}
	chain()
	frames := make([]uintptr, 8)
	steps := make([]uintptr, 8)
	n, ok := walkFrames(unsafe.Pointer(&mem[0]), frames, steps)
	require.True(t, ok)
	require.Equal(t, 3, n)
	assert.Equal(t, []uintptr{16, 48}, steps[:n-1])
	w := newWalkedStack(frames[:n], steps[:n-1], 0, 0, nil)
	assert.True(t, w.matches(unsafe.Pointer(&mem[0])))

	mem[3] = goPC + 1 // another return address
	assert.False(t, w.matches(unsafe.Pointer(&mem[0])))
	chain()
	mem[9] = goPC // another first frame
	assert.False(t, w.matches(unsafe.Pointer(&mem[0])))
	chain()
	mem[2], mem[4], mem[5] = at(4), 0, goexitPC // the same addresses, nearer
	assert.False(t, w.matches(unsafe.Pointer(&mem[0])), "a link that leads elsewhere")
	chain()
	assert.False(t, (&walkedStack{frames: frames[:n]}).matches(unsafe.Pointer(&mem[0])), "a key without its steps")
	runtime.KeepAlive(mem)
}

//go:noinline
func deepen(n int, f func()) byte {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		f()
		return pad[0]
	}
	return deepen(n-1, f) + pad[n%64]
}

// The steps a walk notes are the same whether or not the goroutine's stack
// moved while the walk classified its return addresses (a slow
// classification calls into the runtime, which may grow the stack), and a
// key so noted matches the stack it was walked on. Each walk runs on a new
// goroutine, its small stack filled to another depth, with the class cache
// emptied so that every address is classified the slow way.
func TestWalkStepsSurviveStackMoves(t *testing.T) {
	if !canWalkFrames {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	moved := 0
	for d := range 120 {
		var wg sync.WaitGroup
		wg.Go(func() {
			deepen(d, func() {
				for i := range pcCache {
					pcCache[i].Store(0)
				}
				var frames1, frames2, steps1, steps2 [maxWalk]uintptr
				before := uintptr(framePointer())
				n1, ok1 := walkFrames(framePointer(), frames1[:], steps1[:])
				if uintptr(framePointer()) != before {
					moved++
				}
				n2, ok2 := walkFrames(framePointer(), frames2[:], steps2[:])
				if !ok1 || !ok2 || n1 != n2 || steps1 != steps2 {
					t.Errorf("depth %d: steps %v, then %v", d, steps1[:n1], steps2[:n2])
					return
				}
				if !newWalkedStack(frames1[:n1], steps1[:n1-1], 0, 0, nil).matches(framePointer()) {
					t.Errorf("depth %d: the key does not match its own stack", d)
				}
			})
		})
		wg.Wait()
	}
	if moved == 0 {
		t.Fatal("no stack moved during a walk: the test shows nothing")
	}
}

// goroutineStart returns the return address in a goroutine's first frame,
// as a walk on a new goroutine finds it; 0 where the frames are not walked.
func goroutineStart() uintptr {
	var pc uintptr
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]uintptr, 8)
		if n, ok := walkFrames(framePointer(), buf, nil); ok && n > 0 {
			pc = buf[n-1]
		}
	})
	wg.Wait()
	return pc
}
