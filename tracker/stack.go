package tracker

import (
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// maxStackDepth bounds WithStackDepth; deeper stacks cost capture time and
// memory without making a report any clearer.
const maxStackDepth = 256

// Stack is a captured call stack: program counters only, symbolized when it is
// printed. Stacks captured at the same site share one interned copy, so a
// hundred thousand connections opened by one line of code hold one Stack.
// The zero Stack is empty.
type Stack struct {
	e *stackEntry
}

// Frame is one symbolized frame of a Stack.
type Frame struct {
	Function string // package-qualified function name
	File     string
	Line     int
}

// String formats the frame as "function (file:line)".
func (f Frame) String() string {
	if f.Function == "" {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
}

// IsZero reports whether no stack was captured.
func (s Stack) IsZero() bool { return s.e == nil || len(s.e.pcs) == 0 }

// PCs returns the program counters of the stack, innermost first. The slice
// is shared: callers must not modify it.
func (s Stack) PCs() []uintptr {
	if s.e == nil {
		return nil
	}
	return s.e.pcs
}

// Frames symbolizes the stack, innermost call first.
func (s Stack) Frames() []Frame {
	if s.IsZero() {
		return nil
	}
	frames := runtime.CallersFrames(s.e.pcs)
	var out []Frame
	for {
		f, more := frames.Next()
		if f.Function != "" || f.File != "" {
			out = append(out, Frame{Function: f.Function, File: f.File, Line: f.Line})
		}
		if !more {
			break
		}
	}
	return out
}

// Headline returns the first frame of user code: the first frame outside
// connleak itself, the runtime, net, net/http, database/sql, the common I/O
// helpers and the well-known database drivers. A frame in a _test.go file
// always counts as user code. When every frame is library code, the innermost
// frame is returned.
func (s Stack) Headline() Frame {
	frames := s.Frames()
	for _, f := range frames {
		if !isLibraryFrame(f) {
			return f
		}
	}
	if len(frames) > 0 {
		return frames[0]
	}
	return Frame{}
}

// String symbolizes the stack in the format of a goroutine dump, with the
// headline frame first so that the line to fix is the first thing read.
func (s Stack) String() string {
	frames := s.Frames()
	if len(frames) == 0 {
		return "(no stack)\n"
	}
	var b strings.Builder
	user := -1
	for i, f := range frames {
		if !isLibraryFrame(f) {
			user = i
			break
		}
	}
	if user > 0 {
		writeFrame(&b, frames[user], "")
		b.WriteString("\tcalled through:\n")
		for _, f := range frames[:user] {
			writeFrame(&b, f, "\t")
		}
		b.WriteString("\tthen:\n")
		frames = frames[user+1:]
	}
	for _, f := range frames {
		writeFrame(&b, f, "")
	}
	return b.String()
}

func writeFrame(b *strings.Builder, f Frame, indent string) {
	fmt.Fprintf(b, "%s%s\n%s\t%s:%d\n", indent, f.Function, indent, f.File, f.Line)
}

// libraryPackages are the packages whose frames are skipped when a report
// names the user's line. They are matched on whole path segments.
var libraryPackages = []string{
	"runtime",
	"internal",
	"syscall",
	"net",
	"io",
	"bufio",
	"crypto/tls",
	"database/sql",
	"testing",
	"golang.org/x/net/http2",
	"github.com/jackc/pgx",
	"github.com/jackc/pgconn",
	"github.com/go-sql-driver/mysql",
	"github.com/lib/pq",
	"google.golang.org/grpc",
	modulePath + "/tracker",
	modulePath + "/nethttp",
	modulePath + "/sqlpool",
	modulePath + "/testutil",
}

const modulePath = "github.com/connleak/connleak"

func isLibraryFrame(f Frame) bool {
	if strings.HasSuffix(f.File, "_test.go") {
		return false
	}
	pkg := funcPackage(f.Function)
	for _, p := range libraryPackages {
		if pkg == p || (strings.HasPrefix(pkg, p) && pkg[len(p)] == '/') {
			return true
		}
	}
	return false
}

// funcPackage extracts the import path from a symbol name such as
// "net/http.(*Transport).dialConn" or "example.com/a/b.F.func1".
func funcPackage(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

// stackEntry is an interned stack. refs counts the live records that use it,
// so the table forgets sites that no longer have anything open and stays
// bounded however many distinct sites a long-running program passes through.
type stackEntry struct {
	hash uint64
	pcs  []uintptr
	refs atomic.Int64 // sweptRefs once the table has forgotten the entry
}

// sweptRefs marks an entry the table has forgotten; it is never handed out
// again, so that one logical stack always has one entry in the table.
const sweptRefs = math.MinInt64

// acquire takes a reference unless the entry has been swept.
func (e *stackEntry) acquire() bool {
	for {
		n := e.refs.Load()
		if n < 0 {
			return false
		}
		if e.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

const stackShards = 16

// stackTableSweepAt is the table size past which stacks that no open
// resource uses any more are forgotten. Programs have a bounded number of
// call sites, so this is reached only by unusual ones (deep recursion,
// generated code); it bounds the table all the same.
const stackTableSweepAt = 1 << 16

// stackTable interns stacks by a hash of their program counters. A second
// map per shard, walked, finds the interned stack of a capture from the
// physical frames above it (see framewalk.go), without the runtime's unwinder.
type stackTable struct {
	seed   maphash.Seed
	shards [stackShards]struct {
		mu     sync.Mutex
		m      map[uint64]*stackEntry // by the hash of the logical stack
		walked map[uint64]*walkedStack
	}
}

// walkedStack is the interned stack that a capture with these physical
// frames, skip and depth produces.
type walkedStack struct {
	frames      []uintptr
	skip, depth int
	e           *stackEntry
}

func newStackTable() *stackTable {
	st := &stackTable{seed: maphash.MakeSeed()}
	for i := range st.shards {
		st.shards[i].m = make(map[uint64]*stackEntry)
		st.shards[i].walked = make(map[uint64]*walkedStack)
	}
	return st
}

// capture records the caller's stack, skipping skip frames above capture's
// caller, and returns its interned entry with one reference taken. It must
// not be inlined: the frame walk starts from its own frame, whose return
// address tells apart the call sites of capture.
//
//go:noinline
func (st *stackTable) capture(skip, depth int) *stackEntry {
	if canWalkFrames {
		// The key is the whole physical stack, up to the goroutine's first
		// frame: the frames that runtime.Callers hides (method and ABI
		// wrappers) make any shorter window ambiguous.
		var frames [maxWalk]uintptr
		if n, ok := walkFrames(framePointer(), frames[:]); ok {
			return st.captureWalked(frames[:n], skip, depth)
		}
	}
	return st.captureLogical(skip+1, depth)
}

// captureWalked finds the stack for frames, or captures it once with
// runtime.Callers and remembers it under frames.
func (st *stackTable) captureWalked(frames []uintptr, skip, depth int) *stackEntry {
	h := st.hashPCs(frames) ^ uint64(skip)<<40 ^ uint64(depth)<<52
	sh := &st.shards[h%stackShards]
	sh.mu.Lock()
	w, ok := sh.walked[h]
	if ok && w.skip == skip && w.depth == depth && equalPCs(w.frames, frames) && w.e.acquire() {
		sh.mu.Unlock()
		return w.e
	}
	sh.mu.Unlock()

	e := st.captureLogical(skip+2, depth) // +captureWalked, +capture
	if e == nil {
		return nil
	}
	sh.mu.Lock()
	if len(sh.walked) >= stackTableSweepAt/stackShards {
		for k, old := range sh.walked {
			if old.e.refs.Load() <= 0 {
				delete(sh.walked, k)
			}
		}
	}
	if w, ok := sh.walked[h]; !ok || w.e.refs.Load() < 0 || equalPCs(w.frames, frames) {
		sh.walked[h] = &walkedStack{frames: append([]uintptr(nil), frames...), skip: skip, depth: depth, e: e}
	}
	sh.mu.Unlock()
	return e
}

// captureLogical captures with runtime.Callers, skip frames above the
// caller of captureLogical, and interns the result.
func (st *stackTable) captureLogical(skip, depth int) *stackEntry {
	var small [64]uintptr
	buf := small[:]
	if depth > len(small) {
		buf = make([]uintptr, depth)
	}
	n := runtime.Callers(skip+2, buf[:depth])
	return st.intern(buf[:n])
}

func (st *stackTable) hashPCs(pcs []uintptr) uint64 {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&pcs[0])), len(pcs)*int(unsafe.Sizeof(pcs[0])))
	return maphash.Bytes(st.seed, b)
}

func (st *stackTable) intern(pcs []uintptr) *stackEntry {
	if len(pcs) == 0 {
		return nil
	}
	h := st.hashPCs(pcs)
	sh := &st.shards[h%stackShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[h]; ok && equalPCs(e.pcs, pcs) {
		// Entries in m are never swept: the sweep removes them under this lock.
		e.refs.Add(1)
		return e
	}
	e := &stackEntry{hash: h, pcs: append([]uintptr(nil), pcs...)}
	e.refs.Store(1)
	if _, taken := sh.m[h]; !taken {
		if len(sh.m) >= stackTableSweepAt/stackShards {
			for k, old := range sh.m {
				if old.refs.CompareAndSwap(0, sweptRefs) {
					delete(sh.m, k)
				}
			}
		}
		sh.m[h] = e
	}
	return e
}

// release drops one reference. Entries are not removed here, so a site that
// opens and closes in a loop does not churn the table; intern sweeps entries
// without references once the table passes stackTableSweepAt. Reports that
// still hold a swept entry keep it alive through their Stack values.
func (st *stackTable) release(e *stackEntry) {
	if e != nil {
		e.refs.Add(-1)
	}
}

// size reports how many distinct stacks are interned.
func (st *stackTable) size() int {
	n := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func equalPCs(a, b []uintptr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
