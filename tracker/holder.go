package tracker

import (
	"net"
	"runtime"
	"sync/atomic"
)

// linkState is a record's part in the links: whether it ever took part in
// one (Load, Store), and its idle mark (see Handle.SetIdle), in one word. A
// pool marks a connection idle and in use at every checkout: the mark is a
// bit of the record, set without a lock.
type linkState struct{ v atomic.Uint32 }

const (
	linkedBit uint32 = 1 << iota
	idleBit
	ownsBit   // the connection it holds ends it (see Handle.Own); set under holdMu
	tracedBit // the tracker's telemetry holds a span or attributes for it, out of line
	keptBit   // collected, its telemetry kept for the connection it holds; set under holdMu
)

// The high bits hold the index of the record's attribute set, when it has
// one and no span (see telemetry.attrsIndex).
const (
	attrShift = 24
	attrMask  = uint32(0xff) << attrShift
)

func (s *linkState) Load() bool { return s.v.Load()&linkedBit != 0 }

// Store(true) marks the record linked; a record once linked stays so.
func (s *linkState) Store(linked bool) {
	if linked && !s.Load() {
		s.v.Or(linkedBit)
	}
}

func (s *linkState) idle() bool { return s.v.Load()&idleBit != 0 }

// The record's other flags share the word: a record has no room for
// another field within its size class.
func (s *linkState) owns() bool   { return s.v.Load()&ownsBit != 0 }
func (s *linkState) traced() bool { return s.v.Load()&tracedBit != 0 }
func (s *linkState) kept() bool   { return s.v.Load()&keptBit != 0 }

func (s *linkState) attrs() uint32 { return s.v.Load() >> attrShift }

// The setters read the word first and leave it alone when it already says
// what they would write: a pool flips these bits at every checkout, and a
// plain load costs a fraction of a locked write.

func (s *linkState) setAttrs(idx uint32) {
	for {
		old := s.v.Load()
		if old>>attrShift == idx {
			return
		}
		if s.v.CompareAndSwap(old, old&^attrMask|idx<<attrShift) {
			return
		}
	}
}

func (s *linkState) set(bit uint32, on bool) {
	if (s.v.Load()&bit != 0) == on {
		return
	}
	if on {
		s.v.Or(bit)
	} else {
		s.v.And(^bit)
	}
}

// setIdle sets or clears the idle mark; a marked record is linked, so that
// its Close clears the mark (see unlink).
func (s *linkState) setIdle(idle bool) {
	v := s.v.Load()
	if idle && v&(linkedBit|idleBit) == linkedBit|idleBit || !idle && v&idleBit == 0 {
		return
	}
	if idle {
		s.v.Or(linkedBit | idleBit)
	} else {
		s.v.And(^idleBit)
	}
}

// Hold links the connection c to the resource h tracks, which holds it: a
// response body being read from a client connection, the checkout of a
// pooled connection. Libraries such as net/http and database/sql dial on
// goroutines of their own or keep connections in pools, so c's own stacks
// seldom name the program's line; h's does. While h is open, c's Resource
// has h's in HeldBy, its Site is h's, and reports lead with h's line and
// show c's own stacks as "dialed by".
//
// c is a connection this tracker wraps, or one that unwraps to it through
// NetConn, as a *tls.Conn does. A Handle holds one connection at a time and
// a connection has one holder: a later Hold replaces an earlier link of
// either. The link ends when h or c is closed, or when h is garbage-collected
// without Close after c was closed. A Handle collected without Close while
// c is open still holds c: what the program dropped unclosed is what keeps
// c open (net/http's read loop waits for that body to be read or closed,
// forever), so c's reports go on leading with h's line. Hold does nothing
// when h is nil or closed, or c is not tracked by h's tracker.
func (h *Handle) Hold(c net.Conn) {
	h.hold(c, false)
}

// Own is Hold for a holder whose life is the connection's: the code at h's
// open site has taken c over for good, as a handler that hijacks a
// connection from net/http's server has, and nothing will close h but c's
// end. h is closed when c is closed, or when another holder takes c; when
// c is garbage-collected without Close, h is reported collected beside it,
// with its own line. The Handle itself may then be dropped: it is not
// reported collected on its own.
//
// Own reports whether it linked h to c. It does not when Hold would do
// nothing, or c is closed, and then leaves h as it was: open, for its
// caller to close.
func (h *Handle) Own(c net.Conn) bool {
	return h.hold(c, true)
}

func (h *Handle) hold(c net.Conn, own bool) bool {
	if h == nil {
		return false
	}
	t := h.rec.t
	conn := t.trackedUnder(c)
	if conn == nil || conn == h.rec {
		return false
	}
	// Marked before the closing claims are read, as a Close claims before
	// it reads the mark: either this Hold sees the claim and links nothing,
	// or the Close sees the mark and its unlink, under the lock, comes after
	// the link is made.
	h.rec.linked.Store(true)
	conn.linked.Store(true)
	t.holdMu.Lock()
	if h.rec.closing.Load() || conn.closing.Load() {
		t.holdMu.Unlock()
		return false
	}
	t.unlinkLocked(h.rec)
	ended := t.unlinkLocked(conn)
	h.rec.linked.set(ownsBit, own)
	conn.heldBy, h.rec.holds = h.rec, conn
	t.links++
	t.holdMu.Unlock()
	if own {
		// Its end is c's now, not its own collection: Stop under the
		// KeepAlive below, while h cannot have been collected yet.
		h.rec.cleanup.Stop()
	}
	t.endOwner(ended, false)
	runtime.KeepAlive(h) // collected during Hold, h would claim its close under the link
	return true
}

// trackedUnder returns the record of the connection under c that t wraps,
// looking through NetConn (tls.Conn, and the tracker's own wrappers of
// other trackers); nil if there is none.
func (t *Tracker) trackedUnder(c net.Conn) *record {
	for range 16 { // a bound in case a NetConn returns its own receiver
		switch x := c.(type) {
		case nil:
			return nil
		case trackedConn:
			if r := x.tracked(); r.t == t {
				return r
			}
			c = x.NetConn()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// unlink ends every link of r, which is being closed, and then the owner of
// r, if it had one (see Own).
func (t *Tracker) unlink(r *record) {
	if !r.linked.Load() {
		return
	}
	t.holdMu.Lock()
	owner := t.unlinkLocked(r)
	r.linked.setIdle(false)
	t.holdMu.Unlock()
	t.endOwner(owner, false)
}

// unlinkLocked ends every link of r and returns the holder of r when that
// holder owns it (see Own), for the caller to end once it has let go of
// holdMu.
func (t *Tracker) unlinkLocked(r *record) (owner *record) {
	if held := r.holds; held != nil {
		r.holds, held.heldBy = nil, nil
		t.links--
	}
	return t.unlinkHeldLocked(r)
}

// unlinkHeldLocked ends the link of r to its holder, and returns the holder
// when it owns r.
func (t *Tracker) unlinkHeldLocked(r *record) (owner *record) {
	holder := r.heldBy
	if holder == nil {
		return nil
	}
	r.heldBy, holder.holds = nil, nil
	t.links--
	if holder.isClosed() { // a holder collected without Close held r until now
		holder.linked.setIdle(false)
		if holder.linked.kept() {
			t.tel.drop(holder.id)
		}
	}
	if holder.linked.owns() {
		return holder
	}
	return nil
}

// unlinkCollected ends the links of r, which was garbage-collected without
// Close, but for the connection r holds: that link lasts until the
// connection closes (see Hold). A holder that owned r is reported collected
// beside it.
func (t *Tracker) unlinkCollected(r *record) {
	if !r.linked.Load() {
		return
	}
	t.holdMu.Lock()
	owner := t.unlinkHeldLocked(r)
	if r.holds == nil {
		// Its idle mark ends with it, unless it still holds a connection:
		// that link and mark last until the connection closes.
		r.linked.setIdle(false)
	}
	t.holdMu.Unlock()
	t.endOwner(owner, true)
}

// dropCollectedTelemetry forgets the span and attributes of r, collected
// without Close and reported so (or not, when the poll's queue was full),
// unless r still holds a connection: the connection's reports go on showing
// r, its span among them, and r's telemetry is then dropped when that link
// ends (see unlinkHeldLocked).
func (t *Tracker) dropCollectedTelemetry(r *record) {
	if !r.linked.traced() {
		return
	}
	if r.linked.Load() {
		t.holdMu.Lock()
		holds := r.holds != nil
		if holds {
			r.linked.set(keptBit, true)
		}
		t.holdMu.Unlock()
		if holds {
			return
		}
	}
	t.tel.drop(r.id)
}

// endOwner ends the owner of a connection that was closed, collected or
// taken by another holder: closed as the connection was, or collected with
// it, so that the owner's line is reported too.
func (t *Tracker) endOwner(owner *record, collected bool) {
	switch {
	case owner == nil:
	case collected:
		collectedCleanup(owner)
	default:
		t.release(owner, 2)
	}
}

// holderOf returns the record that holds the connection r now, or nil.
func (t *Tracker) holderOf(r *record) *record {
	if !r.linked.Load() {
		return nil
	}
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	return r.heldBy
}
