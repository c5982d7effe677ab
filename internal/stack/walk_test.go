package stack

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logicalStack is what runtime.Callers says about the caller of
// logicalStack's caller: the reference a walked capture must agree with.
func logicalStack(depth int) []uintptr {
	buf := make([]uintptr, depth)
	return buf[:runtime.Callers(3, buf)]
}

// twoWays captures the stack of its caller twice through st (the first time
// a miss, the second a hit on the walked frames) and once with
// runtime.Callers directly, and checks that all three agree.
//
//go:noinline
func twoWays(t *testing.T, st *Table) *Entry {
	t.Helper()
	first := st.Capture(1, 32)
	second := st.Capture(1, 32)
	want := logicalStack(32)
	require.NotNil(t, first)
	assert.Same(t, first, second, "a second capture at one site finds the first")
	assert.Equal(t, framesOf(want), framesOf(first.pcs))
	return first
}

func framesOf(pcs []uintptr) []string {
	var out []string
	for _, f := range Frames(pcs) {
		out = append(out, fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line))
	}
	return out
}

// inlinable is small enough for the compiler to inline: its frame exists
// only in the inlining tables, which the walk does not read.
func inlinable(t *testing.T, st *Table) *Entry { return twoWays(t, st) }

type capturer struct{ st *Table }

//go:noinline
func (c capturer) method(t *testing.T) *Entry { return twoWays(t, c.st) }

func TestWalkedCaptureMatchesRuntimeCallers(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	var sites []*Entry
	sites = append(sites, twoWays(t, st))
	sites = append(sites, twoWays(t, st)) // another line of this function
	sites = append(sites, inlinable(t, st))
	sites = append(sites, capturer{st}.method(t))
	m := capturer{st}.method
	sites = append(sites, m(t)) // through a method value's wrapper
	func() {
		defer func() { sites = append(sites, twoWays(t, st)) }()
	}()
	func() {
		defer func() {
			recover()
			sites = append(sites, twoWays(t, st)) // on a panicking stack
		}()
		panic("unwinding")
	}()
	var wg sync.WaitGroup
	wg.Go(func() { sites = append(sites, twoWays(t, st)) })
	wg.Wait()
	var recurse func(n int)
	recurse = func(n int) {
		if n == 0 {
			sites = append(sites, twoWays(t, st))
			return
		}
		recurse(n - 1)
	}
	recurse(1)
	recurse(2)
	assert.Equal(t, len(sites)*2, walkedKeys(st), "each capture site (two per twoWays) took the walk")
	recurse(maxWalk) // deeper than a walk: runtime.Callers, every time
	assert.Equal(t, (len(sites)-1)*2, walkedKeys(st))

	for i, a := range sites {
		for _, b := range sites[i+1:] {
			assert.NotSame(t, a, b, "distinct call paths must not share a stack")
		}
	}
}

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

// A stack that the depth limit cuts short is found by its walked key as well:
// the key covers every physical frame the logical stack is drawn from.
func TestWalkedCaptureRespectsSkipAndDepth(t *testing.T) {
	if !walkEnabled {
		t.Skip("no frame walk on " + runtime.GOARCH)
	}
	st := NewTable()
	at := func(skip, depth int) *Entry { return st.Capture(skip, depth) }
	var got [2][3]*Entry
	for i := range got {
		got[i] = [3]*Entry{at(0, 2), at(0, 8), at(1, 8)}
	}
	shallow, deep, skipped := got[0][0], got[0][1], got[0][2]
	for i := range got[0] {
		assert.Same(t, got[0][i], got[1][i], "each configuration finds its own stack again")
	}
	assert.Len(t, shallow.pcs, 2)
	assert.Greater(t, len(deep.pcs), 2)
	assert.NotSame(t, shallow, deep)
	assert.Equal(t, framesOf(deep.pcs)[1:], framesOf(skipped.pcs))
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
func walkNow(buf []uintptr) (int, bool) { return walkFrames(framePointer(), buf) }

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
	var goexitPC uintptr
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]uintptr, 8)
		if n, ok := walkFrames(framePointer(), buf); ok && n > 0 {
			goexitPC = buf[n-1]
		}
	})
	wg.Wait()
	if canWalkFrames {
		require.Equal(t, pcGoroutineStart, classifyPC(goexitPC))
	}

	mem := make([]uintptr, 8)
	at := func(i int) uintptr { return uintptr(unsafe.Pointer(&mem[i])) }
	walk := func() (int, bool) {
		return walkFrames(unsafe.Pointer(&mem[0]), make([]uintptr, 8))
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
