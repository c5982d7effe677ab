package tracker

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/connleak/connleak/internal/stack"
)

// record is the tracker's bookkeeping for one resource. It never points at
// the resource or its wrapper: the wrapper points at the record, so dropping
// the wrapper lets the runtime collect the connection and close its socket.
type record struct {
	// The fields a wrapped connection's Read and Write read (see touch), in
	// the record's first cache line, apart from those written at every
	// request: a client connection's Reads and Writes run on net/http's
	// read and write loops, on other cores than the caller that links and
	// unlinks the connection to each response body (see Handle.Hold), and a
	// line written on one core is a miss on the others. The record is 256
	// bytes, and so aligned on the lines.
	t           *Tracker
	openedAt    int64        // nanoseconds since t.epoch
	lastIO      atomic.Int64 // nanoseconds since t.epoch; 0: never
	state       atomic.Int32
	needFirstIO atomic.Bool
	closing     atomic.Bool // won by the one closer, Close or the collector (see claimClose)
	collected   atomic.Bool
	promoted    atomic.Bool // moved from the young list to the registry map (see Tracker.promote)
	// linked: held, or holding, or marked idle, at some time (see
	// Handle.Hold, Handle.SetIdle), the idle mark, the owns, traced and
	// kept flags, and the index of its attribute set. A connection's is
	// written when it is first linked; its holders' bits are theirs.
	linked linkState
	// Set before the record is published, then read-only, but for what
	// Reopen sets again under the poll lock (see Handle.Reopen).
	id   uint64
	open *stack.Entry

	kind         Kind
	laddr, raddr net.Addr
	label        string

	// limit is TrackHoldLimit's, 0 for the kind's; set before the record is
	// published, then read-only.
	limit    time.Duration
	accepted bool
	// shard is the registry shard of the record's first id; Reopen keeps
	// the record there under its later ids.
	shard uint8
	// inYoung: on its shard's young list; guarded by the shard's lock.
	inYoung bool
	// reusable: re-armed by Reopen at some time; its collection watch
	// outlives each Close. Set and read by the Handle's owner.
	reusable bool
	watch    uint8 // the engine's registration state, under the engine's lock
	// Owned by the poller (guarded by t.pollMu).
	reported  bool
	reason    uint8 // a Reason, in one byte so that limit fits in the size class
	sockState uint8 // the socket's state name as last probed (see sockStateCode)

	sock   sock.Handle   // set before the record is published, then read-only
	cookie atomic.Uint64 // the socket's cookie once identified; 0 before
	// writing counts the writes in progress, as a busy conn is not quiet:
	// in a line that no other goroutine writes at every request.
	writing atomic.Int32
	claim   atomic.Uint32 // claimYoung, then claimWatched or claimDropped
	firstIO atomic.Pointer[stack.Entry]

	// cleanup is the collection watch, set when the record is made and
	// again by a Reopen that re-watches it, and stopped by its Close or an
	// Own; by the Handle's owner.
	cleanup      runtime.Cleanup
	peerSeen     atomic.Pointer[stack.Entry]
	closeSite    atomic.Pointer[stack.Entry]
	peerClosedAt atomic.Int64
	closedAt     atomic.Int64
	// The links of Handle.Hold, both ways, guarded by t.holdMu: heldBy is
	// a connection's holder, holds the connection a holder holds. Pointers
	// in the records, where maps by id cost a pool or a client several
	// inserts and deletes at every checkout or response.
	heldBy, holds *record
}

// observe is called after every Read and Write on a wrapped connection. It
// must stay cheap and allocation-free: it is on the program's I/O path.
func (r *record) observe(err error) {
	r.touch(2) // observe <- wrapper method <- the program's line
	if err != nil && (err == io.EOF || sock.IsReset(err)) {
		r.sawPeerClose(2)
	}
}

// touch records I/O now and, for an accepted connection's first I/O, where:
// skip frames above touch's caller is the program's line.
//
// Until its peer closes, a connection's last I/O only dates it in
// snapshots, and the last poll's time, or its open time if later, does
// that to within a poll interval without a clock read per Read and Write
// (a fair part of the cost of a tracked request on a VM's clock). Once
// its peer has closed, each I/O restarts the grace period: it reads the
// clock. An I/O that returns EOF or a reset marks the peer closed at the
// exact time (see sawPeerClose).
//
// A record whose close has begun takes no new stack: its references were, or
// are about to be, given back. (A Read racing its own Close can still slip
// one in between; the table then keeps that site's stack, which costs one
// entry a site, not one a connection.)
func (r *record) touch(skip int) {
	if r.needFirstIO.Load() && !r.closing.Load() && r.needFirstIO.CompareAndSwap(true, false) {
		r.firstIO.Store(r.t.stacks.Capture(skip+1, r.t.cfg.stackDepth))
	}
	if State(r.state.Load()) != StateActive {
		r.lastIO.Store(r.t.now())
		return
	}
	if at := max(r.t.tick.Load(), r.openedAt); r.lastIO.Load() < at {
		r.lastIO.Store(at)
	}
}

// sawPeerClose notes that a Read or Write told the program the peer is gone,
// and where: skip frames above sawPeerClose's caller is the program's line.
func (r *record) sawPeerClose(skip int) {
	if r.peerSeen.Load() == nil && !r.closing.Load() {
		e := r.t.stacks.Capture(skip+1, r.t.cfg.stackDepth)
		if !r.peerSeen.CompareAndSwap(nil, e) {
			r.t.stacks.Release(e)
		}
	}
	r.t.markPeerClosed(r, r.t.now())
}

// handle is the record's socket with its cookie as known now.
func (r *record) handle() sock.Handle {
	h := r.sock
	h.Cookie = r.cookie.Load()
	return h
}

// claimClose makes the caller the record's one closer: a Close and the
// collector's cleanup may race, and the loser must do nothing. The claimant
// records the close (closedAt, closeSite, collected) and only then calls
// markClosed, since the poller reads those fields once it sees StateClosed.
func (r *record) claimClose() bool {
	return r.closing.CompareAndSwap(false, true)
}

// markClosed publishes the close; only the claimant calls it. A plain store
// is enough: nothing else moves a record to StateClosed, and markPeerClosed
// only moves it out of StateActive, so whichever of the two comes second
// the record ends closed.
func (r *record) markClosed() {
	r.state.Store(int32(StateClosed))
}

// identify reads the cookie of r's socket the first time the tracker needs
// it, on the poller rather than on the program's dial path. By then the
// descriptor number could in principle name another socket (a wrapper
// collected, its socket closed by the runtime before the tracker's cleanup
// ran, the number reused), so the socket's addresses must match the record's
// first. It reports whether the descriptor is still r's socket. Without
// cookies, the tracker's close and cleanup bookkeeping is what tells a
// reused descriptor from the original.
func (r *record) identify() bool {
	if r.cookie.Load() != 0 {
		return true
	}
	if !r.sock.OK || State(r.state.Load()) == StateClosed {
		return false
	}
	if !sock.HasCookies {
		return true
	}
	if r.sock.TCP && !sock.SameAddrs(r.sock.FD, r.laddr, r.raddr) {
		return false
	}
	// Zero (a kernel without SO_COOKIE) leaves the addresses as the only check.
	r.cookie.CompareAndSwap(0, sock.Cookie(r.sock.FD))
	return true
}

// network is the network of the resource's addresses ("tcp", "unix"), or "".
func (r *record) network() string {
	switch {
	case r.laddr != nil:
		return r.laddr.Network()
	case r.raddr != nil:
		return r.raddr.Network()
	}
	return ""
}

func (r *record) isClosed() bool { return State(r.state.Load()) == StateClosed }

// The engine's claim on a record: the poller claims it when it first hands
// the socket to the engine, a Close that comes first drops it. Whichever
// comes second learns what to do from the first, so a connection closed
// before any poll costs the engine one compare-and-swap and no lock.
const (
	claimYoung   uint32 = iota // not seen by the engine yet
	claimWatched               // the engine watches it: unwatch must remove it
	claimDropped               // closed first: the engine must never watch it
)

// claimForEngine is called by an engine's watch, under the engine's lock.
func (r *record) claimForEngine() bool {
	return r.claim.CompareAndSwap(claimYoung, claimWatched)
}

// dropBeforeEngine is called by an engine's unwatch, before its lock: true
// means the engine never saw r and has nothing to undo.
func (r *record) dropBeforeEngine() bool {
	return r.claim.CompareAndSwap(claimYoung, claimDropped)
}

func stackOf(e *stack.Entry) Stack { return Stack{e: e} }

// snapshot copies the record into a Resource. It runs under t.pollMu, which
// guards the socket state the poller last read.
func (r *record) snapshot() Resource {
	res := r.snapshotAlone(sockStateName(r.sockState))
	if h := r.t.holderOf(r); h != nil {
		held := h.snapshotAlone("")
		res.HeldBy = &held
	}
	return res
}

// snapshotAlone is snapshot without HeldBy, so it takes no lock: a holder
// is snapshot this way (a holder is not held in turn), and noteIdleClose
// snapshots one under the holder lock.
func (r *record) snapshotAlone(sockName string) Resource {
	t := r.t
	res := Resource{
		ID:                 r.id,
		Kind:               r.kind,
		Network:            r.network(),
		Label:              r.label,
		OpenedAt:           t.wall(r.openedAt),
		State:              State(r.state.Load()),
		PeerClosedAt:       t.wall(r.peerClosedAt.Load()),
		LastIO:             t.wall(r.lastIO.Load()),
		ClosedAt:           t.wall(r.closedAt.Load()),
		SocketState:        sockName,
		Accepted:           r.accepted,
		Stack:              stackOf(r.open),
		FirstIOStack:       stackOf(r.firstIO.Load()),
		PeerCloseSeenStack: stackOf(r.peerSeen.Load()),
		CloseStack:         stackOf(r.closeSite.Load()),
		Collected:          r.collected.Load(),
	}
	if r.laddr != nil {
		res.LocalAddr = r.laddr.String()
	}
	if r.raddr != nil {
		res.RemoteAddr = r.raddr.String()
	}
	res.Idle = t.isIdle(r)
	if r.linked.traced() {
		res.Span, res.Attributes = t.tel.infoOf(r.id)
	} else {
		res.Attributes = t.tel.attrsOf(r)
	}
	return res
}

// leakAt builds the Leak for a record judged leaked at now.
func (r *record) leakAt(reason Reason, now int64) Leak {
	l := Leak{Resource: r.snapshot(), Reason: reason}
	since := r.openedAt
	if reason == ReasonPeerClosed || reason == ReasonIdleInPool {
		since = r.peerClosedAt.Load()
	}
	if reason == ReasonCollected {
		now = r.closedAt.Load()
	}
	l.For = time.Duration(now - since)
	return l
}

// quietSince is when the record last showed a sign of life: its last Read
// or Write, or the moment its peer closed, whichever is later.
func (r *record) quietSince() int64 {
	q := r.peerClosedAt.Load()
	if io := r.lastIO.Load(); io > q {
		q = io
	}
	return q
}

// stringAddr is a net.Addr for resources tracked by Track, which know their
// addresses only as strings.
type stringAddr struct{ network, addr string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.addr }
