package tracker

import (
	"time"

	"github.com/connleak/connleak/internal/sock"
)

// idleClosed is a connection closed while idle in its pool after its peer
// had closed it, with its report made at the close: by the poll that
// delivers it, its holder link is gone.
type idleClosed struct {
	r *record
	l Leak
}

// noteIdleClose runs in release, claimed but not yet marked closed, for a
// connection the program is closing. A connection held idle in its pool
// whose peer has closed it, as the tracker knows or a probe says now, is
// one a pool is discarding: evicted at a checkout, or dropped by the pool's
// own idle limits. Its server's close is reported with ReasonIdleInPool
// even when no poll saw it before the pool closed it: the report is made
// now, while the link to its idle holder still says whose it is, and queued
// for the poller, which delivers it unless a poll reported the connection
// already. It costs nothing for a connection nothing holds.
func (t *Tracker) noteIdleClose(r *record, from State) {
	if !r.sock.OK || !r.sock.Stream || r.kind == KindListener || !t.heldIdle(r) {
		return
	}
	name := ""
	if from != StatePeerClosed {
		if !r.identify() {
			return
		}
		p := sock.ProbeSocket(r.handle())
		if p.State < sock.PeerClosed {
			return
		}
		name = p.Name
		r.peerClosedAt.CompareAndSwap(0, t.now()) // the state is the closer's to set
	}
	l := Leak{Resource: r.snapshotAlone(name), Reason: ReasonIdleInPool}
	l.State = StatePeerClosed
	l.For = time.Duration(t.now() - r.peerClosedAt.Load())
	// The holder is read under the lock its links are kept under: a Handle
	// re-armed by Reopen is unlinked under it before its fields change.
	t.holdMu.Lock()
	h := r.heldBy
	if h == nil || !h.linked.idle() {
		t.holdMu.Unlock()
		return
	}
	held := h.snapshotAlone("")
	t.holdMu.Unlock()
	l.HeldBy = &held
	t.pendMu.Lock()
	if len(t.idleClosed) < maxPending {
		t.idleClosed = append(t.idleClosed, idleClosed{r, l})
	} else {
		t.pendDropped++
	}
	t.pendMu.Unlock()
}

// idleClosedLeaks returns the queued reports of connections closed idle
// whose peer had closed them, but for those a poll reported already (whose
// Close then resolves that report). It runs in poll, under pollMu. A queued
// record's close had begun when it was queued, so no poll judges it later:
// each is reported once.
func (t *Tracker) idleClosedLeaks() []Leak {
	t.pendMu.Lock()
	q := t.idleClosed
	t.idleClosed = nil
	t.pendMu.Unlock()
	var out []Leak
	for _, c := range q {
		if !c.r.reported {
			out = append(out, c.l)
		}
	}
	return out
}
