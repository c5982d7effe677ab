package tracker

import (
	"runtime"
	"sync/atomic"

	"github.com/connleak/connleak/internal/stack"
)

// Reopen ends the tracking of h's resource and starts tracking a new one of
// the same kind, opened at the caller's line: it does what
//
//	h.Close()
//	h = t.Track(kind, opts...)
//
// does, with h's kind and tracker, and returns the new resource's Handle.
// The new resource has an ID, open time and open-site stack of its own,
// holds no connection and is not idle, whatever h's was or did; a leak
// reported for h's resource is resolved as its Close resolves it.
//
// It is for a pool that tracks every checkout of one connection: the
// returned Handle is usually h itself, re-armed, so that a checkout costs
// the stack capture and a few stores instead of a new record, Handle and
// collection watch. A Handle re-armed this way is still reported with
// ReasonCollected if it is garbage-collected while open. Reopen falls back
// to a new Handle when the tracker is busy polling (it never waits for a
// poll) or when h's resource was reported leaked and its resolution is due;
// callers keep the Handle it returns. Like Close, it is meant for the
// Handle's one owner: calls on one Handle must not be concurrent. It returns
// nil for a nil Handle.
func (h *Handle) Reopen(opts ...TrackOption) *Handle {
	if h == nil {
		return nil
	}
	r := h.rec
	t := r.t
	var tc trackConfig
	tc.apply(opts)
	// Captured before the lock, which is held only for the stores.
	var open *stack.Entry
	if len(tc.pcs) > 0 {
		open = t.stacks.Intern(tc.pcs[:min(len(tc.pcs), t.cfg.stackDepth)])
	} else {
		open = t.stacks.Capture(1+tc.skip, t.cfg.stackDepth)
	}
	if !t.pollMu.TryRLock() {
		t.stacks.Release(open)
		return h.retrack(&tc)
	}
	// The poller owns reported, and reads the fields rewritten below, under
	// pollMu: holding it, no poll, Open or Leaks is looking at r. Anything
	// else that reaches r does so through the registry's young list (under
	// the shard lock), the suspects (removed below) or the holder links
	// (removed by the release), and the collector's cleanup cannot run
	// while the caller holds h.
	if r.reported || r.collected.Load() {
		t.pollMu.RUnlock()
		t.stacks.Release(open)
		return h.retrack(&tc)
	}
	wasClosed := r.closing.Load()
	// Its Close stopped the watch, or an Own did (the bit stays set until
	// the clear below).
	rewatch := wasClosed && !r.reusable || r.linked.owns()
	r.reusable = true
	if !wasClosed {
		t.release(r, 1+tc.skip)
	}
	if _, held := t.holdLimit(r); held {
		t.susMu.Lock()
		delete(t.suspects, r.id)
		t.susMu.Unlock()
	}
	// Not reported, the old resource needs no span or attributes for a
	// resolved event; the new one takes its own below.
	if r.linked.traced() {
		t.tel.drop(r.id)
		r.linked.set(tracedBit, false)
	}
	r.linked.setAttrs(0)
	if r.linked.owns() { // its release ended its links; it owns nothing now
		// Set only by a Hold or Own of this Handle, by its one owner: read
		// without the lock, which a body or checkout that Holds, and never
		// Owns, would otherwise take at every re-arm.
		t.holdMu.Lock()
		r.linked.set(ownsBit, false)
		t.holdMu.Unlock()
	}

	now := t.now()
	if now == 0 {
		now = 1
	}
	sh := &t.shards[r.shard]
	sh.mu.Lock()
	r.id = t.nextID.Add(1)
	r.openedAt = now
	r.open = open
	tc.setOn(r)
	// Most of these are zero already (a checkout does no I/O of its own,
	// and a Close skips the clock and the stack): the clears load first, a
	// fraction of the locked write of a store.
	clearStack(&r.firstIO)
	clearStack(&r.peerSeen)
	clearStack(&r.closeSite)
	clearTime(&r.lastIO)
	clearTime(&r.peerClosedAt)
	clearTime(&r.closedAt)
	r.reason, r.sockState = 0, 0
	// Still on the young list, it stays there; else it was promoted and
	// unregistered, or swept from the list when closed, and joins it again.
	if r.promoted.Load() {
		r.promoted.Store(false)
	}
	if !r.inYoung {
		sh.addYoung(r)
	}
	r.state.Store(int32(StateActive))
	r.closing.Store(false)
	sh.mu.Unlock()
	t.tel.attach(r, tc.span, tc.attrs) // before a poll can read its traced flag
	t.pollMu.RUnlock()

	if rewatch {
		r.cleanup = runtime.AddCleanup(h, collectedCleanup, r)
	}
	t.profileAdd(r, 1+tc.skip)
	if limit, ok := t.holdLimit(r); ok && limit > 0 {
		t.addSuspect(r)
	}
	runtime.KeepAlive(h)
	return h
}

// clearStack and clearTime store nil or 0 unless it is there already. Not
// one generic helper: its calls through the constraint's methods are
// neither inlined nor direct.
func clearStack(v *atomic.Pointer[stack.Entry]) {
	if v.Load() != nil {
		v.Store(nil)
	}
}

func clearTime(v *atomic.Int64) {
	if v.Load() != 0 {
		v.Store(0)
	}
}

// retrack is Reopen's fallback: Close, then Track anew from the caller of
// Reopen.
func (h *Handle) retrack(tc *trackConfig) *Handle {
	kind := h.rec.kind
	h.rec.t.release(h.rec, 2+tc.skip)
	runtime.KeepAlive(h)
	return h.rec.t.track(kind, tc, 2+tc.skip)
}
