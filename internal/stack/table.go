package stack

import (
	"hash/maphash"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MaxDepth bounds the depth of a capture; deeper stacks cost capture time
// and memory without making a report any clearer.
const MaxDepth = 256

// Entry is an interned stack. refs counts the live holders that use it, so
// the table forgets sites that no longer have anything open and stays
// bounded however many distinct sites a long-running program passes through.
type Entry struct {
	hash uint64
	pcs  []uintptr
	refs atomic.Int64 // sweptRefs once the table has forgotten the entry
}

// PCs returns the program counters of the stack, innermost first, as
// runtime.Callers returned them. The slice is shared: callers must not
// modify it. PCs of a nil Entry is nil.
func (e *Entry) PCs() []uintptr {
	if e == nil {
		return nil
	}
	return e.pcs
}

// Hash is the entry's hash of its program counters, 0 for a nil Entry. It
// tells stacks apart across the table's sweeps, which may intern a stack
// again as a new Entry.
func (e *Entry) Hash() uint64 {
	if e == nil {
		return 0
	}
	return e.hash
}

// Refs reports how many references to the entry are held; it is negative
// once the table has forgotten the entry.
func (e *Entry) Refs() int64 { return e.refs.Load() }

// sweptRefs marks an entry the table has forgotten; it is never handed out
// again, so that one logical stack always has one entry in the table.
const sweptRefs = math.MinInt64

// acquire takes a reference unless the entry has been swept.
func (e *Entry) acquire() bool {
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

const shards = 16

// Table interns stacks by a hash of their program counters. A second map
// per shard, walked, finds the interned stack of a capture from the physical
// frames above it (see walk.go), without the runtime's unwinder. It is safe
// for concurrent use.
type Table struct {
	seed maphash.Seed
	// added counts the entries and walked keys made since the last sweep;
	// sweepAt is how many make the next one worth its cost.
	added   atomic.Int64
	sweepAt atomic.Int64
	// callers counts the captures that ran runtime.Callers: the tests tell
	// a walked hit from a miss by it. A miss costs microseconds, so the add
	// is noise there.
	callers atomic.Int64
	shards  [shards]struct {
		mu     sync.Mutex
		m      map[uint64]*Entry // by the hash of the logical stack
		walked map[uint64]*walkedStack
	}
}

// walkedStack is the interned stack that a capture with these physical
// frames, skip and depth produces.
type walkedStack struct {
	frames      []uintptr
	skip, depth int
	e           *Entry
}

// NewTable returns an empty table.
func NewTable() *Table {
	st := &Table{seed: maphash.MakeSeed()}
	for i := range st.shards {
		st.shards[i].m = make(map[uint64]*Entry)
		st.shards[i].walked = make(map[uint64]*walkedStack)
	}
	return st
}

// Capture records the caller's stack, skipping skip frames above Capture's
// caller, at most depth frames (1 to MaxDepth), and returns its interned
// entry with one reference taken: give it back with Release. It returns nil
// when there is nothing to capture.
//
// It must not be inlined: the frame walk starts from its own frame, whose
// return address tells apart the call sites of Capture.
//
//go:noinline
func (st *Table) Capture(skip, depth int) *Entry {
	if walkEnabled {
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
func (st *Table) captureWalked(frames []uintptr, skip, depth int) *Entry {
	h := st.hashPCs(frames) ^ uint64(skip)<<40 ^ uint64(depth)<<52
	sh := &st.shards[h%shards]
	sh.mu.Lock()
	w, ok := sh.walked[h]
	if ok && w.skip == skip && w.depth == depth && equalPCs(w.frames, frames) && w.e.acquire() {
		sh.mu.Unlock()
		return w.e
	}
	sh.mu.Unlock()

	e := st.captureLogical(skip+2, depth) // +captureWalked, +Capture
	if e == nil {
		return nil
	}
	sh.mu.Lock()
	if w, ok := sh.walked[h]; !ok || w.e.refs.Load() < 0 || equalPCs(w.frames, frames) {
		sh.walked[h] = &walkedStack{frames: append([]uintptr(nil), frames...), skip: skip, depth: depth, e: e}
		if !ok {
			st.added.Add(1)
		}
	}
	sh.mu.Unlock()
	return e
}

// captureLogical captures with runtime.Callers, skip frames above the
// caller of captureLogical, and interns the result.
func (st *Table) captureLogical(skip, depth int) *Entry {
	var small [64]uintptr
	buf := small[:]
	if depth > len(small) {
		buf = make([]uintptr, depth)
	}
	n := runtime.Callers(skip+2, buf[:depth])
	st.callers.Add(1)
	return st.intern(buf[:n])
}

// Intern returns the entry for pcs, program counters as runtime.Callers
// returns them, with one reference taken, as Capture does for a stack it
// captures: for a stack that the caller did not capture itself. It copies
// pcs, and returns nil for an empty pcs.
func (st *Table) Intern(pcs []uintptr) *Entry { return st.intern(pcs) }

func (st *Table) hashPCs(pcs []uintptr) uint64 {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&pcs[0])), len(pcs)*int(unsafe.Sizeof(pcs[0])))
	return maphash.Bytes(st.seed, b)
}

func (st *Table) intern(pcs []uintptr) *Entry {
	if len(pcs) == 0 {
		return nil
	}
	h := st.hashPCs(pcs)
	sh := &st.shards[h%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, taken := sh.m[h]
	if taken && equalPCs(old.pcs, pcs) {
		// Entries in m are never swept: Sweep removes them under this lock.
		old.refs.Add(1)
		return old
	}
	e := &Entry{hash: h, pcs: append([]uintptr(nil), pcs...)}
	e.refs.Store(1)
	if !taken { // else another stack has the hash: this one stays out of the table
		sh.m[h] = e
		st.added.Add(1)
	}
	return e
}

// Release drops one reference taken by Capture. Entries are not removed
// here, so a site that opens and closes in a loop does not churn the table;
// Sweep forgets the entries nothing references. Release(nil) does nothing.
func (st *Table) Release(e *Entry) {
	if e != nil {
		e.refs.Add(-1)
	}
}

// minSweep is the growth below which MaybeSweep leaves the table alone.
const minSweep = 4096

// MaybeSweep sweeps when the table has grown by at least as much as it held
// after the last sweep (and by minSweep), so that sweeping costs O(1) per
// stack interned however many distinct sites a program passes through, and
// a program with a fixed set of sites never pays for it. The tracker's
// poller calls it on every tick: captures never scan the table.
func (st *Table) MaybeSweep() {
	if st.added.Load() < max(st.sweepAt.Load(), minSweep) {
		return
	}
	st.Sweep()
}

// Sweep forgets the stacks that no holder references any more. Its cost is
// in proportion to the table's size, so it belongs off the I/O path. Holders of a forgotten entry, such as reports
// made earlier, keep it alive through their own pointers; a later capture
// of the same stack interns a new entry.
func (st *Table) Sweep() {
	st.added.Store(0)
	live := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.refs.CompareAndSwap(0, sweptRefs) {
				delete(sh.m, k)
			}
		}
		for k, w := range sh.walked {
			if w.e.refs.Load() < 0 {
				delete(sh.walked, k)
			}
		}
		if len(sh.m) == 0 {
			sh.m = make(map[uint64]*Entry) // a map keeps the size of its peak
		}
		if len(sh.walked) == 0 {
			sh.walked = make(map[uint64]*walkedStack)
		}
		live += len(sh.m) + len(sh.walked)
		sh.mu.Unlock()
	}
	st.sweepAt.Store(int64(live))
}

// Size reports how many distinct stacks are interned.
func (st *Table) Size() int {
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
