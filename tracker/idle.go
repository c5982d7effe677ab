package tracker

import (
	"context"
	"net"

	"github.com/connleak/connleak/internal/sock"
)

// SetIdle says whether the resource h tracks sits idle in its pool (true)
// or is in use (false), as a connection pool integration knows and the
// tracker cannot. While h is idle, the peer closing the connection h holds
// (see Hold) is the pool's hygiene, a server's idle timeout or restart, not
// the program's leak: it is reported at once with ReasonIdleInPool, at Info
// level, instead of with ReasonPeerClosed after the grace period. A resource
// is in use until SetIdle(true). SetIdle does nothing on a nil or closed
// Handle.
func (h *Handle) SetIdle(idle bool) {
	if h == nil {
		return
	}
	t := h.rec.t
	if !idle && !h.rec.linked.Load() {
		return // never marked idle: nothing to undo, and no lock taken
	}
	h.rec.linked.Store(true) // so that its Close clears the mark (see unlink)
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	if !idle {
		delete(t.links.idle, h.rec.id)
		return
	}
	if h.rec.closing.Load() {
		return
	}
	if t.links.idle == nil {
		t.links.idle = make(map[uint64]struct{})
	}
	t.links.idle[h.rec.id] = struct{}{}
}

// heldIdle reports whether the connection r is held by a resource idle in
// its pool.
func (t *Tracker) heldIdle(r *record) bool {
	if !r.linked.Load() {
		return false
	}
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	h, ok := t.links.byConn[r.id]
	if !ok {
		return false
	}
	_, idle := t.links.idle[h.id]
	return idle
}

// isIdle reports whether r itself is marked idle in its pool.
func (t *Tracker) isIdle(r *record) bool {
	if !r.linked.Load() {
		return false
	}
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	_, idle := t.links.idle[r.id]
	return idle
}

type dialHookKey struct{}

// ContextWithDialHook returns a copy of ctx that carries hook: a DialFunc
// made by WrapDialer, called with that context or one derived from it, calls
// hook with each connection it dials, tracked, on the dialing goroutine,
// before returning it. An integration learns this way which connection a
// library dialed on its behalf, such as the socket under a database
// driver's connection, and links it to its own Handle (Hold). A nil hook
// returns ctx unchanged.
func ContextWithDialHook(ctx context.Context, hook func(net.Conn)) context.Context {
	if hook == nil {
		return ctx
	}
	return context.WithValue(ctx, dialHookKey{}, hook)
}

// PeerClosed reports whether the peer of c, a connection this tracker wraps
// (or one above it, such as a *tls.Conn), has closed it: as the tracker
// knows already, or as a probe of its socket says now. It is for a pool
// deciding whether to hand out a connection; false when c is not tracked
// here, is closed, or the system cannot tell.
func (t *Tracker) PeerClosed(c net.Conn) bool {
	r := t.trackedUnder(c)
	if r == nil {
		return false
	}
	switch State(r.state.Load()) {
	case StatePeerClosed:
		return true
	case StateClosed:
		return false
	}
	if !r.sock.OK || !r.sock.Stream || r.closing.Load() || !r.identify() {
		return false
	}
	if p := sock.ProbeSocket(r.handle()); p.State < sock.PeerClosed || r.closing.Load() {
		return false
	}
	t.markPeerClosed(r, t.now())
	return true
}
