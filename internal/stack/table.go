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
	// recent holds, per call site of Capture, the walked keys of its last
	// captures (see captureRecent).
	recent [recentSites]recentSet
}

// recentSet is one call site's remembered keys (see captureRecent).
type recentSet struct {
	ways [recentWays]atomic.Pointer[walkedStack]
	// misses counts the lookups in a row that found nothing: a site that
	// more call paths than ways take in turn stops looking, but for one
	// capture in recentThrottle, and stops writing its ways.
	misses atomic.Uint32
}

// walkedStack is the interned stack that a capture with these physical
// frames, skip and depth produces.
type walkedStack struct {
	frames []uintptr
	// steps holds the distance from each of the frames but the last to the
	// next. A call path's frames always lie at the same distances, as each
	// function's frame has a fixed size, so a lookup among the recent keys
	// knows where each frame should be before it reads the one below, and
	// the processor can load the frames together instead of one after the
	// other (see matches).
	steps       []uintptr
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
		fp := framePointer()
		e, looked := st.captureRecent(fp, skip, depth)
		if e != nil {
			return e
		}
		if e, ok := st.captureWalk(fp, skip, depth, looked); ok {
			return e
		}
	}
	return st.captureLogical(skip+1, depth)
}

// captureWalk walks the frames above fp, Capture's frame, and returns the
// stack they lead to, or false when the walk refuses them. The key is the
// whole physical stack, up to the goroutine's first frame: the frames that
// runtime.Callers hides (method and ABI wrappers) make any shorter window
// ambiguous.
//
// Its buffer makes a frame of a kilobyte, so it is not inlined: in Capture,
// that frame made a goroutine's first capture, such as the first Read of
// each connection a server accepts on a goroutine of its own, grow and copy
// the young goroutine's stack, microseconds a connection, where a capture
// found among the recent keys needs a few words.
//
//go:noinline
func (st *Table) captureWalk(fp unsafe.Pointer, skip, depth int, remember bool) (*Entry, bool) {
	var frames, steps [maxWalk]uintptr
	n, ok := walkFrames(fp, frames[:], steps[:])
	if !ok {
		return nil, false
	}
	return st.captureWalked(frames[:n], steps[:n-1], skip, depth, remember), true
}

// captureWalked finds the stack for frames, or captures it once with
// runtime.Callers and remembers it under frames, and, if remember is set,
// among the recent keys of its call site.
func (st *Table) captureWalked(frames, steps []uintptr, skip, depth int, remember bool) *Entry {
	h := st.hashPCs(frames) ^ uint64(skip)<<40 ^ uint64(depth)<<52
	sh := &st.shards[h%shards]
	sh.mu.Lock()
	w, ok := sh.walked[h]
	if ok && w.skip == skip && w.depth == depth && equalPCs(w.frames, frames) && w.e.acquire() {
		sh.mu.Unlock()
		// A key whose frames lay elsewhere would never match among the
		// recent keys; it is not worth their room.
		if remember && equalPCs(w.steps, steps) {
			st.remember(w, h)
		}
		return w.e
	}
	sh.mu.Unlock()

	e := st.captureLogical(skip+3, depth) // +captureWalked, +captureWalk, +Capture
	if e == nil {
		return nil
	}
	sh.mu.Lock()
	if w, ok := sh.walked[h]; !ok || w.e.refs.Load() < 0 || equalPCs(w.frames, frames) {
		w = newWalkedStack(frames, steps, skip, depth, e)
		sh.walked[h] = w
		if !ok {
			st.added.Add(1)
		}
		sh.mu.Unlock()
		if remember {
			st.remember(w, h)
		}
		return e
	}
	sh.mu.Unlock()
	return e
}

// Each call site of Capture remembers the walked keys of its last captures
// in a few ways of one set of Table.recent, chosen by the site's return
// address, skip and depth. A capture that repeats one of them is found by
// reading each frame where the key says it lies and comparing its return
// address and link with the remembered ones: no hash, lock, map or
// classification of the addresses, and only the few cache lines of the
// remembered key, where a walk through the map touched a line of the class
// cache per frame, which the I/O between two captures had evicted. That took
// the capture of a pool's checkout from about 1 µs to a tenth of that inside
// a query loop.
//
// A site taken in turn by more call paths than it has ways misses every
// time, and a miss costs more than the walk it precedes: it reads the keys
// of the ways, scattered in memory. After recentThrottle misses in a row it
// looks once in recentThrottle captures, so that such a site pays a counter
// and finds its keys again within a few dozen captures once one path
// repeats.
const (
	recentSites    = 64
	recentWays     = 4
	recentThrottle = 16
)

func recentIndex(ret uintptr, skip, depth int) int {
	h := ret ^ ret>>7 ^ ret>>17 ^ uintptr(skip)*0x9e37 ^ uintptr(depth)<<3
	return int(h % recentSites)
}

// captureRecent returns the entry of a remembered walked key equal to the
// physical stack above fp, with a reference taken, or nil, and whether it
// looked: a site whose lookups keep missing looks only now and then (see
// recentThrottle). It reads a frame only when all the frames below it
// matched a remembered key: each of the key's return addresses was
// classified an ordinary Go frame when the key was walked, so it follows
// exactly the frames walkFrames would.
func (st *Table) captureRecent(fp unsafe.Pointer, skip, depth int) (*Entry, bool) {
	if fp == nil {
		return nil, false
	}
	ret0 := *(*uintptr)(unsafe.Add(fp, unsafe.Sizeof(uintptr(0))))
	set := &st.recent[recentIndex(ret0, skip, depth)]
	// Racing captures may lose a count: it is a hint.
	m := set.misses.Load()
	if m >= recentThrottle {
		set.misses.Store(m + 1)
		if m%recentThrottle != 0 {
			return nil, false
		}
	}
	if e := set.lookup(fp, ret0, skip, depth); e != nil {
		if m != 0 {
			set.misses.Store(0)
		}
		return e, true
	}
	if m < recentThrottle {
		set.misses.Store(m + 1)
	}
	return nil, true
}

func (set *recentSet) lookup(fp unsafe.Pointer, ret0 uintptr, skip, depth int) *Entry {
	for i := range set.ways {
		w := set.ways[i].Load()
		if w != nil && w.skip == skip && w.depth == depth && w.frames[0] == ret0 && w.matches(fp) {
			if w.e.acquire() {
				return w.e
			}
			return nil
		}
	}
	return nil
}

// matches reports whether the physical stack above fp is w's: whether each
// frame holds w's return address and links to the next frame w's step away.
// It reads a frame only once the frame below has been seen to link to it, so
// it reads exactly what walkFrames would; but where each frame lies comes
// from w, not from the frame below, so the loads do not wait for each other,
// and a stack of twenty frames costs about one load's latency instead of
// twenty.
func (w *walkedStack) matches(fp unsafe.Pointer) bool {
	if len(w.steps) != len(w.frames)-1 {
		return false
	}
	frame := fp
	for n, step := range w.steps {
		if *(*uintptr)(unsafe.Add(frame, unsafe.Sizeof(uintptr(0)))) != w.frames[n] ||
			*(*uintptr)(frame)-uintptr(frame) != step {
			return false
		}
		frame = unsafe.Add(frame, step)
	}
	return *(*uintptr)(unsafe.Add(frame, unsafe.Sizeof(uintptr(0)))) == w.frames[len(w.steps)]
}

// newWalkedStack copies frames and steps into one allocation.
func newWalkedStack(frames, steps []uintptr, skip, depth int, e *Entry) *walkedStack {
	n := len(frames)
	buf := make([]uintptr, n+len(steps))
	copy(buf, frames)
	copy(buf[n:], steps)
	return &walkedStack{frames: buf[:n:n], steps: buf[n:], skip: skip, depth: depth, e: e}
}

// remember makes w, whose frames hash to h, one of the remembered keys of
// its call site. The way is chosen by h, so that the keys of a site with
// several callers stay side by side instead of taking each other's place.
func (st *Table) remember(w *walkedStack, h uint64) {
	slot := &st.recent[recentIndex(w.frames[0], w.skip, w.depth)].ways[(h>>20)%recentWays]
	if slot.Load() != w {
		slot.Store(w)
	}
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
