package stack

import (
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"
)

// The frame walk makes repeated captures at one site cheap. runtime.Callers
// pays the runtime's unwinder for every frame (function lookup, stack-delta
// and inlining tables): it was the largest part of the tracker's cost per
// short-lived connection, about 0.9 of 2 µs in
// BenchmarkInterleavedDialAcceptClose. Following the frame-pointer chain
// reads two words per frame and checks the return address against a cache.
// The return addresses it yields are only a key: the logical stack a report
// shows (inlined calls expanded, wrappers hidden, the requested frames
// skipped) is still produced by runtime.Callers, once per distinct key (every
// time for the rare key whose hash collides with another's), and the same
// physical frames, all of them up to the goroutine's first, always expand to
// the same logical stack.
//
// The walk trusts a frame only after checking its return address against the
// program's own function table: it stops at anything that is not Go code or
// that switches stacks (a cgo callback, a signal), and the capture then falls
// back to runtime.Callers. It follows a frame pointer only up the stack, and
// by at most maxFrameSize.

// WalkEnv names the environment variable that turns the frame walk off:
// CONNLEAK_STACKWALK=off makes every capture call runtime.Callers, for a
// program where the walk is suspected of a wrong stack, or to measure what
// it saves. It is read once, when the program starts.
const WalkEnv = "CONNLEAK_STACKWALK"

// walkEnabled is whether Capture tries the frame walk first.
var walkEnabled = canWalkFrames && os.Getenv(WalkEnv) != "off"

// maxWalk bounds the frames a walk reads; deeper stacks are captured with
// runtime.Callers.
const maxWalk = 128

// maxFrameSize is the largest step between two frame pointers the walk
// accepts; a frame larger than this sends the capture to runtime.Callers.
const maxFrameSize = 1 << 20

// walkFrames fills buf with return addresses, starting with the one saved in
// the frame at fp, up to and including the goroutine's first frame, and
// steps, when it is not nil, with the distance from each frame but the last
// to the next. It reports false when a frame cannot be trusted or buf is too
// short for the whole stack.
func walkFrames(fp unsafe.Pointer, buf, steps []uintptr) (int, bool) {
	if fp == nil {
		return 0, false
	}
	for n := 0; n < len(buf); n++ {
		ret := *(*uintptr)(unsafe.Add(fp, unsafe.Sizeof(uintptr(0))))
		class := classifyPC(ret)
		if class != pcGo && class != pcGoroutineStart {
			return 0, false
		}
		buf[n] = ret
		if class == pcGoroutineStart {
			return n + 1, true
		}
		// The step is taken from two words read together: the goroutine's
		// stack may move while classifyPC runs, and the runtime then moves
		// fp and the saved frame pointers with it.
		next, cur := *(*uintptr)(fp), uintptr(fp)
		if next <= cur || next-cur > maxFrameSize {
			return 0, false
		}
		if steps != nil {
			steps[n] = next - cur
		}
		fp = unsafe.Add(fp, next-cur)
	}
	return 0, false
}

// pcClass is what a return address says about the frame that holds it.
type pcClass uint8

const (
	pcUnknown        pcClass = iota // not Go code, or a stack switch: stop
	pcGo                            // an ordinary Go frame: go on
	pcGoroutineStart                // runtime.goexit: the goroutine's first frame
)

// pcCache remembers the class of recently seen return addresses, so that a
// walk looks each one up in the function table only once. A slot holds
// pc<<2|class. Each address has two slots to choose from: with one, two
// addresses of one stack that hashed alike evicted each other on every
// walk, and each eviction cost a lookup and an allocation.
var pcCache [2048]atomic.Uintptr

func classifyPC(pc uintptr) pcClass {
	h := pc ^ pc>>11
	a := &pcCache[h%uintptr(len(pcCache))]
	va := a.Load()
	if va>>2 == pc {
		return pcClass(va & 3)
	}
	b := &pcCache[(h>>11^h*0x9e3779b9)%uintptr(len(pcCache))]
	vb := b.Load()
	if vb>>2 == pc {
		return pcClass(vb & 3)
	}
	c := classifyPCSlow(pc)
	slot := a
	if va != 0 && vb == 0 {
		slot = b
	}
	slot.Store(pc<<2 | uintptr(c))
	return c
}

// stackSwitchers are runtime functions at whose frames the frame-pointer
// chain may continue on another stack, or in C code without frame pointers.
var stackSwitchers = []string{
	"runtime.cgocallback", "runtime.asmcgocall", "runtime.systemstack",
	"runtime.mcall", "runtime.morestack", "runtime.mstart", "runtime.rt0_go",
	"runtime.sigtramp", "runtime.sigpanic", "runtime.asyncPreempt",
	"runtime.gogo", "runtime.goexit0",
}

func classifyPCSlow(pc uintptr) pcClass {
	if pc == 0 || pc>>(8*unsafe.Sizeof(pc)-2) != 0 {
		return pcUnknown // would not survive the cache's shift
	}
	f := runtime.FuncForPC(pc - 1)
	if f == nil {
		return pcUnknown
	}
	// The frame a return address leads to is that of the outermost function
	// at the address, which begins at f.Entry; f is named after the
	// innermost, inlined there. The runtime inlines into sigpanic the
	// panicmem it calls: by that name, a signal's frame passed for an
	// ordinary one, and the walk went on past the faulting function, which
	// keeps no frame pointer when it is a leaf and so hides its caller's
	// return address.
	outer := runtime.FuncForPC(f.Entry())
	if outer == nil {
		return pcUnknown
	}
	return classifyFunc(outer.Name())
}

// classifyFunc classifies a return address by the function it points into.
func classifyFunc(name string) pcClass {
	if name == "runtime.goexit" {
		return pcGoroutineStart
	}
	for _, s := range stackSwitchers {
		if strings.HasPrefix(name, s) {
			return pcUnknown
		}
	}
	return pcGo
}
