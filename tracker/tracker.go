package tracker

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connleak/connleak/internal/procwide"
	"github.com/connleak/connleak/internal/sock"
	"github.com/connleak/connleak/internal/stack"
)

// Tracker records every resource wrapped or tracked through it, watches
// connections for a peer that has closed while the program has not, and
// reports leaks. It is safe for concurrent use. The zero value is not usable:
// make one with New, or use Default.
type Tracker struct {
	cfg config
	// What every Track, Reopen and Close reads or takes, side by side: a
	// client or a pool does one of each per request, with the tracker's
	// lines pushed out of the cache by the I/O in between. The counter and
	// locks, which those write, are a cache line apart from tick, which
	// every Read and Write of a connection reads, on the cores of net/http's
	// read and write loops rather than the caller's.
	epoch time.Time
	// tick is the clock at the last poll: a connection whose peer has not
	// closed dates its Reads and Writes by it (see record.touch).
	tick   atomic.Int64
	stacks *stack.Table
	_      [64]byte
	nextID atomic.Uint64
	// pollMu serializes Poll, Open and Leaks; Reopen read-locks it, so
	// that Reopens of different Handles run side by side, but never beside
	// one of those.
	pollMu sync.RWMutex
	holdMu sync.Mutex // guards the links, links included
	links  int        // how many links there are (see Handle.Hold), for the tests

	engine engine

	// The registry. A record goes first into its shard's young list, an
	// append under the shard lock; the next poll moves those still open into
	// m and hands their sockets to the engine. Most connections close before
	// that, and then cost the registry and the engine no map operation.
	shards  [registryShards]registryShard
	toWatch []*record // promoted this poll, for the engine; guarded by pollMu

	// suspects are the records the poller judges each tick: connections whose
	// peer has closed, and resources whose kind has a hold limit.
	susMu    sync.Mutex
	suspects map[uint64]*record

	// pending holds records collected by the runtime, for the poller to
	// report; the runtime's cleanup goroutine must not run callbacks.
	pendMu      sync.Mutex
	pending     []*record
	pendDropped int
	idleClosed  []idleClosed // closed idle in their pool, peer gone (see noteIdleClose)

	reportMu  sync.Mutex    // held from judgement to delivery: events arrive in order
	polls     uint64        // guarded by pollMu
	reporter  atomic.Uint64 // the goroutine delivering events now, 0 if none
	collected []Leak        // most recent collected-without-Close leaks, bounded
	status    HealthStatus  // as of the last poll
	sig       *signalDump   // WithSignalDump; nil when off
	tel       telemetry     // spans and metrics (otel.go)

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// registryShard is one of the registry's shards; a record stays in the
// shard of its first id (record.shard), whatever ids Reopen gives it later.
type registryShard struct {
	mu    sync.Mutex
	m     map[uint64]*record // records that were open at a poll
	young []*record          // registered since the last poll; closed ones linger until it
}

const (
	registryShards = 32
	maxPending     = 1 << 14
	maxCollected   = 1024
)

// New makes a Tracker and starts its poller. Invalid options are a
// programming error: New panics with an error naming the option (Validate
// returns the same error without panicking). Call Close to stop the poller.
func New(opts ...Option) *Tracker {
	t := build(opts)
	go t.run()
	return t
}

// build makes a Tracker without starting its poller.
func build(opts []Option) *Tracker {
	cfg := defaultConfig()
	if err := cfg.applyAll(opts); err != nil {
		panic(err)
	}
	t := &Tracker{
		cfg:      cfg,
		epoch:    time.Now(),
		stacks:   stack.NewTable(),
		engine:   newEngine(&cfg),
		suspects: make(map[uint64]*record),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*record)
	}
	t.tick.Store(1) // 0 means never, in lastIO
	t.tel.init(t)
	t.sig = startSignalDump(t)
	return t
}

var (
	defaultOnce    sync.Once
	defaultTracker *Tracker
)

// Default returns the process-wide Tracker, made with default options the
// first time it is asked for. It is never closed. Its poller goroutine runs
// in (*Tracker).runProcessWide, the name goroutine-leak checks ignore.
func Default() *Tracker {
	defaultOnce.Do(func() {
		defaultTracker = build(nil)
		go defaultTracker.runProcessWide()
		procwide.DefaultMade.Store(true)
	})
	return defaultTracker
}

// runProcessWide is Default's poller. A name of its own lets goroutine-leak
// checks ignore this one poller, which lives as long as the process, and
// still catch the poller of a tracker that someone forgot to Close.
//
//go:noinline
func (t *Tracker) runProcessWide() { t.run() }

// Close stops the poller and waits for it to finish. Wrapped connections
// keep working and are still recorded; Poll can still be called. Close is
// idempotent and always returns nil.
func (t *Tracker) Close() error {
	t.closeOnce.Do(func() {
		close(t.stop)
		if !t.inCallback() {
			<-t.done // a callback's Close cannot wait for the poll that runs it
		}
		t.sig.close()
		t.tel.close()
		t.engine.close()
	})
	return nil
}

func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.pollInterval)
	defer tick.Stop()
	// due fires when a grace period or hold limit ends between two ticks,
	// so that a leak is reported when it becomes one, not up to a poll
	// interval later.
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	minGap := min(t.cfg.pollInterval/10, 2*time.Millisecond)
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		case <-due.C:
		}
		if next := t.poll(); next != 0 {
			// At least minGap between polls, however spread the deadlines.
			due.Reset(max(time.Duration(next-t.now()), minGap))
		} else {
			due.Stop()
		}
	}
}

// compactEvery is how many polls pass between two compactions of the
// tracker's maps.
const compactEvery = 64

// compact gives every emptied map of the tracker a fresh one. Go maps keep
// the size of their peak, and a burst of connections should not pin that
// memory for the life of the process.
func (t *Tracker) compact() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.m = emptied(sh.m)
		if len(sh.young) == 0 && cap(sh.young) > minYoungSweep {
			sh.young = nil
		}
		sh.mu.Unlock()
	}
	t.susMu.Lock()
	t.suspects = emptied(t.suspects)
	t.susMu.Unlock()
	if c, ok := t.engine.(interface{ compact() }); ok {
		c.compact()
	}
}

// emptied returns m, or a new map if m is empty.
func emptied[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return make(map[K]V)
	}
	return m
}

// inCallback reports whether the caller is a callback or log handler that
// the tracker is running right now.
func (t *Tracker) inCallback() bool {
	g := t.reporter.Load()
	return g != 0 && g == goroutineID()
}

// goroutineID reads the current goroutine's number from its stack header,
// "goroutine 7 [running]:". It is slow (a microsecond) and used only while
// events are being delivered.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	var id uint64
	for _, c := range bytes.TrimPrefix(buf[:n], []byte("goroutine ")) {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// now is the tracker's clock: monotonic nanoseconds since the tracker was
// made, cheap enough for the I/O path and immune to wall-clock jumps.
func (t *Tracker) now() int64 { return int64(time.Since(t.epoch)) }

// wall converts a tracker clock reading to a time.Time; 0 is the zero time.
func (t *Tracker) wall(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return t.epoch.Add(time.Duration(ns))
}

// newRecord registers a record for a resource opened skip frames above
// newRecord's caller.
func (t *Tracker) newRecord(kind Kind, skip int) *record {
	r := t.makeRecord(kind, t.stacks.Capture(skip+1, t.cfg.stackDepth))
	t.profileAdd(r, skip+1)
	return r
}

// newRecordAt registers a record for a resource whose open-site stack is
// pcs, not its opener's; the profile, which takes its own stacks, still
// records the opener's, skip frames above newRecordAt's caller.
func (t *Tracker) newRecordAt(kind Kind, pcs []uintptr, skip int) *record {
	r := t.makeRecord(kind, t.stacks.Intern(pcs))
	t.profileAdd(r, skip+1)
	return r
}

func (t *Tracker) makeRecord(kind Kind, open *stack.Entry) *record {
	r := &record{
		t:        t,
		id:       t.nextID.Add(1),
		kind:     kind,
		openedAt: t.now(),
		open:     open,
	}
	if r.openedAt == 0 {
		r.openedAt = 1 // 0 means "never" in the record's clock fields
	}
	return r
}

// minYoungSweep is the young-list length from which a full list drops its
// closed records before it grows.
const minYoungSweep = 64

func (t *Tracker) register(r *record) {
	r.shard = uint8(r.id % registryShards)
	sh := &t.shards[r.shard]
	sh.mu.Lock()
	sh.addYoung(r)
	sh.mu.Unlock()
	if limit, ok := t.holdLimit(r); ok && limit > 0 {
		t.addSuspect(r)
	}
}

// addYoung appends r to the young list, under sh.mu.
func (sh *registryShard) addYoung(r *record) {
	if n := len(sh.young); n == cap(sh.young) && n >= minYoungSweep {
		// Between two polls a burst of short connections would otherwise
		// keep every closed record here. The list grows by half or more
		// when more than half of it is still open, so sweeps stay O(1) per
		// register.
		sh.young = slices.DeleteFunc(sh.young, leavesYoung)
		if len(sh.young) > n/2 {
			sh.young = slices.Grow(sh.young, n)
		}
	}
	sh.young = append(sh.young, r)
	r.inYoung = true
}

// leavesYoung reports whether a sweep of the young list drops r: it does
// when r is closed.
func leavesYoung(r *record) bool {
	if r.isClosed() {
		r.inYoung = false
		return true
	}
	return false
}

// unregister runs after r is marked closed. A record still on its young
// list stays there: the next poll, or the list's next sweep, drops it; so a
// short connection's Close takes no registry lock.
func (t *Tracker) unregister(r *record) {
	if !r.promoted.Load() {
		return
	}
	sh := &t.shards[r.shard]
	sh.mu.Lock()
	delete(sh.m, r.id)
	sh.mu.Unlock()
}

// promote moves the records registered since the last poll that are still
// open into the registry's maps, and hands their sockets to the engine. It
// runs under pollMu.
//
// A Close racing with it is settled without the Close taking the shard lock:
// Close marks r closed and then reads r.promoted; promote sets r.promoted and
// then reads r's state. Of the two later reads, at least one sees the other
// side's write, and that side removes r from the map.
func (t *Tracker) promote() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for j, r := range sh.young {
			sh.young[j] = nil
			r.inYoung = false
			if r.isClosed() {
				continue
			}
			sh.m[r.id] = r
			r.promoted.Store(true)
			if r.isClosed() {
				delete(sh.m, r.id) // its unregister may have missed the promotion
				continue
			}
			t.toWatch = append(t.toWatch, r)
		}
		sh.young = sh.young[:0]
		sh.mu.Unlock()
	}
	for i, r := range t.toWatch {
		t.toWatch[i] = nil
		if r.sock.OK && r.sock.Stream {
			t.engine.watch(r)
		}
	}
	t.toWatch = t.toWatch[:0]
}

func (t *Tracker) addSuspect(r *record) {
	t.susMu.Lock()
	t.suspects[r.id] = r
	t.susMu.Unlock()
}

// markPeerClosed records that the peer of r has gone.
func (t *Tracker) markPeerClosed(r *record, now int64) {
	if State(r.state.Load()) != StateActive {
		return
	}
	// The time goes first: a poll that sees the state peer-closed, on
	// another goroutine than a Read's, judges the grace and reports the leak
	// from it. Of racing callers the first time stays.
	r.peerClosedAt.CompareAndSwap(0, now)
	if r.state.CompareAndSwap(int32(StateActive), int32(StatePeerClosed)) {
		t.addSuspect(r)
	}
}

// release ends tracking of r because the program closed it. It runs before
// the underlying Close, so that the socket is no longer probed when its
// descriptor number is freed.
func (t *Tracker) release(r *record, skip int) {
	if !r.claimClose() {
		return
	}
	// Loaded after the claim: judge explains why a record the poller has
	// reported is then always seen peer-closed here.
	from := State(r.state.Load())
	_, held := t.holdLimit(r)
	if from == StatePeerClosed || held {
		// The close time and site are shown only when a reported leak is
		// resolved, and only a peer-closed or hold-limited resource can have
		// been reported: other Closes skip the clock and the stack.
		r.closedAt.Store(t.now())
		r.closeSite.Store(t.stacks.Capture(skip+1, t.cfg.stackDepth))
	}
	if r.linked.Load() {
		t.noteIdleClose(r, from)
	}
	r.markClosed()
	if !r.reusable {
		// A Handle that Reopen re-arms keeps its watch: collected after a
		// Close, it finds the record closed and does nothing.
		r.cleanup.Stop()
	}
	t.forget(r)
	if r.linked.traced() && from != StatePeerClosed && !held {
		// Never reported, so no resolved event will need its span; a record
		// that could have been keeps it until the poll that sees it closed.
		t.tel.drop(r.id)
	}
}

// forget drops r from the registry and the engine and returns its stacks.
func (t *Tracker) forget(r *record) {
	if r.sock.OK {
		t.engine.unwatch(r)
	}
	t.unregister(r)
	if r.collected.Load() {
		t.unlinkCollected(r)
	} else {
		t.unlink(r)
	}
	t.profileRemove(r)
	t.stacks.Release(r.open)
	t.stacks.Release(r.firstIO.Load())
	t.stacks.Release(r.peerSeen.Load())
	t.stacks.Release(r.closeSite.Load())
}

// collectedCleanup runs on the runtime's cleanup goroutine when a wrapper or
// Handle was garbage-collected without Close. It only queues the record: the
// report is made by the poller.
func collectedCleanup(r *record) {
	if !r.claimClose() {
		return
	}
	t := r.t
	r.closedAt.Store(t.now())
	// Before the state: a tick that sees the record closed must know that
	// the pending list, not the suspects, resolves it.
	r.collected.Store(true)
	r.markClosed()
	t.forget(r)
	t.pendMu.Lock()
	queued := len(t.pending) < maxPending
	if queued {
		t.pending = append(t.pending, r)
	} else {
		t.pendDropped++
	}
	t.pendMu.Unlock()
	if !queued {
		t.dropCollectedTelemetry(r)
	}
}

// watchCollection arranges for collectedCleanup to run if obj is dropped
// without being closed, and returns obj.
func watchCollection[T any](obj *T, r *record) *T {
	r.cleanup = runtime.AddCleanup(obj, collectedCleanup, r)
	return obj
}

// all returns every registered record.
func (t *Tracker) all() []*record {
	var out []*record
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, r := range sh.m {
			out = append(out, r)
		}
		for _, r := range sh.young {
			if !r.isClosed() {
				out = append(out, r)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Open returns a snapshot of every resource open now, oldest first.
func (t *Tracker) Open() []Resource {
	recs := t.all()
	t.pollMu.Lock()
	out := make([]Resource, 0, len(recs))
	for _, r := range recs {
		if State(r.state.Load()) != StateClosed {
			out = append(out, r.snapshot())
		}
	}
	t.pollMu.Unlock()
	sortResources(out)
	return out
}

// Leaks answers "what leaked?" in one call: every open resource judged
// leaked now, by the state the tracker knows (call Poll first to probe the
// sockets this instant), followed by the most recent resources that were
// garbage-collected without Close (ReasonCollected; at most 1024 of them,
// the oldest forgotten first), which are gone and no longer open. The open
// ones come in the order they were opened, the collected ones in the order
// the runtime collected them.
func (t *Tracker) Leaks() []Leak {
	t.pollMu.Lock()
	defer t.pollMu.Unlock()
	now := t.now()
	var out []Leak
	for _, r := range t.suspectList() {
		if reason := t.judge(r, now); reason != 0 {
			out = append(out, r.leakAt(reason, now))
		}
	}
	sortLeaks(out)
	return append(out, t.collected...)
}

func (t *Tracker) suspectList() []*record {
	t.susMu.Lock()
	defer t.susMu.Unlock()
	out := make([]*record, 0, len(t.suspects))
	for _, r := range t.suspects {
		out = append(out, r)
	}
	return out
}

// judge returns why r is leaked at now, or 0 if it is not.
//
// A record whose close has begun is not leaked, though it is not marked
// closed yet: its closer may have found it active and recorded neither the
// time nor the site of the close, which its resolved event would lack.
// Here the state is loaded before the claim; release takes the claim before
// it loads the state. Go's atomics are sequentially consistent, so when the
// claim is not taken yet at this load, release's load of the state comes
// after this one and sees this state or a later one: a state never returns
// to StateActive, and only the claimant marks it closed. A record judged
// peer-closed here is thus seen peer-closed by its closer, which records
// the close.
func (t *Tracker) judge(r *record, now int64) Reason {
	state := State(r.state.Load())
	if state == StateClosed || r.closing.Load() {
		return 0
	}
	if state == StatePeerClosed && r.kind != KindListener {
		if t.heldIdle(r) {
			// Nothing reads or writes an idle pooled connection, so no
			// reply can be on its way: no grace.
			return ReasonIdleInPool
		}
		if r.writing.Load() == 0 && now-r.quietSince() > int64(t.cfg.grace) {
			return ReasonPeerClosed
		}
	}
	if limit, ok := t.holdLimit(r); ok && now-r.openedAt > int64(limit) {
		return ReasonHeldTooLong
	}
	return 0
}

// Poll runs one detection tick now, synchronously: it probes the tracked
// sockets, judges leaks, and reports new leaks, resolved leaks and
// collected resources. The poller calls it every poll interval, and when a
// grace period or hold limit ends between two intervals; tests and tools
// call it to see the present state without waiting.
func (t *Tracker) Poll() { t.poll() }

// poll is Poll; it returns when the next judgement is due (the tracker's
// clock), or 0 when nothing is waiting for one.
func (t *Tracker) poll() (next int64) {
	if t.inCallback() {
		return 0 // a Poll from inside a callback would wait for itself
	}
	t.reportMu.Lock()
	defer t.reportMu.Unlock()
	t.pollMu.Lock()
	t.polls++
	if t.polls%compactEvery == 0 {
		t.compact()
	}
	t.stacks.MaybeSweep()
	t.promote()
	now := t.now()
	t.tick.Store(now)
	t.engine.poll(func(r *record, p sock.Probe) {
		if p.Name != "" {
			r.sockState = sockStateCode(p.Name)
		}
		if p.State >= sock.PeerClosed && r.kind != KindListener {
			t.markPeerClosed(r, now)
		}
	})

	var fresh, resolved, gone []Leak
	for _, r := range t.suspectList() {
		if State(r.state.Load()) == StateClosed {
			t.susMu.Lock()
			delete(t.suspects, r.id)
			t.susMu.Unlock()
			// A collected record is resolved from the pending list.
			if r.reported && !r.collected.Load() {
				resolved = append(resolved, r.leakAt(Reason(r.reason), r.closedAt.Load()))
			}
			if r.linked.traced() && !r.collected.Load() {
				t.tel.drop(r.id)
			}
			continue
		}
		if r.reported || r.closing.Load() {
			// A record whose close has begun is resolved, or just dropped,
			// by a later tick that sees it closed.
			continue
		}
		if reason := t.judge(r, now); reason != 0 {
			r.reported, r.reason = true, uint8(reason)
			fresh = append(fresh, r.leakAt(reason, now))
		} else if due := t.dueAt(r); due != 0 && (next == 0 || due < next) {
			next = due
		}
	}

	fresh = append(fresh, t.idleClosedLeaks()...)
	t.pendMu.Lock()
	pend, dropped := t.pending, t.pendDropped
	t.pending, t.pendDropped = nil, 0
	t.pendMu.Unlock()
	for _, r := range pend {
		if r.reported {
			// Already reported leaked: the runtime closing it resolves that
			// leak; it is not a second one.
			resolved = append(resolved, r.leakAt(Reason(r.reason), r.closedAt.Load()))
		} else {
			gone = append(gone, r.leakAt(ReasonCollected, now))
		}
		t.dropCollectedTelemetry(r)
	}
	t.collected = append(t.collected, gone...)
	if over := len(t.collected) - maxCollected; over > 0 {
		t.collected = append(t.collected[:0:0], t.collected[over:]...)
	}
	health := t.health(now)
	prev := t.status
	t.status = health.Status
	t.pollMu.Unlock()

	t.report(fresh, resolved, gone, dropped, health.Status.level())
	t.logHealth(prev, health)
	return next
}

// holdLimit is how long r may be open: its own limit (TrackHoldLimit), else
// its kind's (WithHoldLimit); false when it has none.
func (t *Tracker) holdLimit(r *record) (time.Duration, bool) {
	if r.limit > 0 {
		return r.limit, true
	}
	if len(t.cfg.holdLimits) == 0 {
		return 0, false
	}
	limit, ok := t.cfg.holdLimits[r.kind]
	return limit, ok
}

// dueAt returns when r, not leaked now, will be judged leaked if nothing
// changes: the end of its grace period or hold limit; 0 if never.
func (t *Tracker) dueAt(r *record) int64 {
	var due int64
	// A write in progress restarts the grace when it ends; the regular tick
	// judges it then.
	if State(r.state.Load()) == StatePeerClosed && r.kind != KindListener && r.writing.Load() == 0 {
		due = r.quietSince() + int64(t.cfg.grace) + 1
	}
	if limit, ok := t.holdLimit(r); ok && limit > 0 {
		if d := r.openedAt + int64(limit) + 1; due == 0 || d < due {
			due = d
		}
	}
	return due
}

// report delivers the events of one tick. Logs are grouped by open site, so a
// thousand leaks from one line make one log record, not a thousand; they are
// logged at level, which the health status sets.
func (t *Tracker) report(fresh, resolved, gone []Leak, dropped int, level slog.Level) {
	leaks := append(fresh, gone...)
	if len(leaks) == 0 && len(resolved) == 0 && dropped == 0 {
		return
	}
	t.reporter.Store(goroutineID())
	defer t.reporter.Store(0)
	if fn := t.cfg.onLeak; fn != nil {
		for _, l := range leaks {
			t.safeCall(fn, l)
		}
	}
	if fn := t.cfg.onResolved; fn != nil {
		for _, l := range resolved {
			t.safeCall(fn, l)
		}
	}
	t.safeReport(leaks, resolved)
	logger := t.logger()
	if logger == nil {
		return
	}
	ctx := context.Background()
	for _, g := range GroupLeaks(leaks) {
		if g.Reason == ReasonIdleInPool {
			// The pool's hygiene, not the program's leak: never louder than
			// Info, whatever the health.
			logger.LogAttrs(ctx, slog.LevelInfo, "connleak: pooled connection closed by its peer while idle", g.attrs()...)
			continue
		}
		logger.LogAttrs(ctx, level, "connleak: leak", g.attrs()...)
	}
	for _, l := range resolved {
		logger.LogAttrs(ctx, slog.LevelInfo, "connleak: leak resolved",
			slog.Uint64("id", l.ID),
			slog.String("kind", string(l.Kind)),
			slog.String("site", l.Site().String()),
			slog.String("local", l.LocalAddr),
			slog.String("remote", l.RemoteAddr),
			slog.String("closed_at", closedAt(l)))
	}
	if dropped > 0 {
		logger.LogAttrs(ctx, slog.LevelWarn, "connleak: collected resources not reported: queue full",
			slog.Int("dropped", dropped))
	}
}

func (t *Tracker) logger() *slog.Logger {
	if t.cfg.loggerSet {
		return t.cfg.logger
	}
	return slog.Default()
}

// safeCall runs a user callback; a panic in it is logged, never propagated
// into the poller.
func (t *Tracker) safeCall(fn func(Leak), l Leak) {
	defer func() {
		if p := recover(); p != nil {
			if lg := t.logger(); lg != nil {
				lg.Error("connleak: leak callback panicked", slog.Any("panic", p))
			}
		}
	}()
	fn(l)
}

// safeReport hands the poll's leaks to OpenTelemetry. The program's
// providers, processors and exporters run inside it: a panic there is
// logged, and neither stops the poller nor escapes from Poll.
func (t *Tracker) safeReport(leaks, resolved []Leak) {
	defer func() {
		if p := recover(); p != nil {
			if lg := t.logger(); lg != nil {
				lg.Error("connleak: OpenTelemetry reporting panicked", slog.Any("panic", p))
			}
		}
	}()
	t.tel.report(leaks, resolved)
}

// registerConn fills the socket fields of r from c and starts watching it.
func (t *Tracker) registerConn(r *record, c net.Conn) {
	r.laddr, r.raddr = c.LocalAddr(), c.RemoteAddr()
	r.sock.Describe(c, r.network())
	if r.sock.OK && r.sock.Stream && !r.sock.TCP {
		// Only TCP sockets can be identified later by their addresses (see
		// identify); the rarer unix sockets pay for the cookie now.
		r.cookie.Store(sock.Cookie(r.sock.FD))
	}
	t.register(r) // the next poll hands the socket to the engine
}

// closedAt says where a resolved leak was closed, for its log record.
func closedAt(l Leak) string {
	if l.CloseStack.IsZero() {
		return "no close site: collected by the runtime"
	}
	return l.CloseStack.Site().String()
}
