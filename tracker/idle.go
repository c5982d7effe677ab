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
	// Only the Handle's owner calls SetIdle and Close, one at a time, and
	// the collector's cleanup cannot run while the owner holds h: a closed
	// Handle is seen closed here, and a mark set here is cleared by the
	// Close that follows.
	if idle && h.rec.closing.Load() {
		return
	}
	h.rec.linked.setIdle(idle)
}

// heldIdle reports whether the connection r is held by a resource idle in
// its pool.
func (t *Tracker) heldIdle(r *record) bool {
	if !r.linked.Load() {
		return false
	}
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	h := r.heldBy
	return h != nil && h.linked.idle()
}

// isIdle reports whether r itself is marked idle in its pool.
func (t *Tracker) isIdle(r *record) bool {
	return r.linked.idle()
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
//
// The probe is one system call that polls the socket for a shutdown,
// hang-up or error; only a socket that shows one is then asked its TCP
// state, to confirm and name it. A pool that calls PeerClosed at every
// checkout pays the poll, the cheapest question the kernel answers.
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
	h := r.handle()
	if sock.PollShowsOpen(h) {
		return false
	}
	if p := sock.ProbeSocket(h); p.State < sock.PeerClosed || r.closing.Load() {
		return false
	}
	t.markPeerClosed(r, t.now())
	return true
}
