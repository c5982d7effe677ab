package tracker

import (
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Kind names a kind of tracked resource. Integrations add their own kinds,
// such as an HTTP response body or an SQL transaction.
type Kind string

// The kinds the tracker itself creates.
const (
	KindConn     Kind = "conn"
	KindListener Kind = "listener"
	// KindResource is the kind of a resource given to Track with no kind
	// of its own (an empty Kind); WithHoldLimit("") limits it.
	KindResource Kind = "resource"
)

// State is where a tracked resource is in its life.
type State int

const (
	// StateActive: open, and nothing says the peer has gone.
	StateActive State = iota
	// StatePeerClosed: open here, but the peer has closed or reset the
	// connection (the kernel says CLOSE_WAIT or CLOSE, or a Read returned EOF
	// or a reset).
	StatePeerClosed
	// StateClosed: closed by the program, or collected by the runtime.
	StateClosed
)

// String returns "active", "peer-closed" or "closed".
func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StatePeerClosed:
		return "peer-closed"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Reason says why a resource was judged leaked.
type Reason int

const (
	// ReasonPeerClosed: the peer closed the connection, and the program has
	// neither closed it nor used it for the grace period.
	ReasonPeerClosed Reason = iota + 1
	// ReasonHeldTooLong: the resource has been open longer than its kind's
	// hold limit (see WithHoldLimit).
	ReasonHeldTooLong
	// ReasonCollected: the program dropped the resource without closing it
	// and the garbage collector reclaimed it.
	ReasonCollected
	// ReasonIdleInPool: the peer closed a connection while it sat idle in
	// its pool (see Handle.SetIdle): a server's idle timeout, restart or
	// kill, which the pool's hygiene answers, not a bug in the program. It
	// is reported at Info level, as soon as it is seen, and testutil never
	// fails a test for it.
	ReasonIdleInPool
)

// String describes the reason in a few words, as reports print it.
func (r Reason) String() string {
	switch r {
	case ReasonPeerClosed:
		return "peer closed, never closed here"
	case ReasonHeldTooLong:
		return "held longer than its hold limit"
	case ReasonCollected:
		return "garbage-collected without Close"
	case ReasonIdleInPool:
		return "peer closed it while idle in its pool"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Resource is a snapshot of one tracked resource.
type Resource struct {
	ID                    uint64
	Kind                  Kind
	Network               string
	LocalAddr, RemoteAddr string
	Label                 string // set by the integration that tracked it; never credentials
	OpenedAt              time.Time
	State                 State
	// PeerClosedAt is when the tracker learned that the peer had closed:
	// the poll whose probe saw it (up to one poll interval after the FIN
	// arrived), or the Read that returned EOF or a reset. Zero unless the
	// peer has closed.
	PeerClosedAt time.Time
	// LastIO is when the last Read or Write was. Once the tracker has seen
	// the peer close, exactly; before, it is the time of the tracker's last
	// poll before the I/O, or OpenedAt if later: within a poll interval
	// while the poller runs (it stops at Close). Zero if none yet.
	LastIO   time.Time
	ClosedAt time.Time // zero unless closed
	// SocketState is the kernel's name for the socket's state as last probed
	// ("ESTABLISHED", "CLOSE_WAIT", ...); empty when unknown.
	SocketState string
	// Accepted is true for connections returned by a wrapped listener.
	Accepted bool
	// Stack is the open site: where the resource was dialed, accepted,
	// wrapped or tracked.
	Stack Stack
	// FirstIOStack is where an accepted connection was first read or written:
	// the handler that owns it, when the open site is a shared accept loop.
	FirstIOStack Stack
	// PeerCloseSeenStack is where a Read returned EOF or a reset to the
	// program: the code that learned the peer had gone.
	PeerCloseSeenStack Stack
	// HeldBy is the resource that holds this connection now (see
	// Handle.Hold): the response body being read from it, the checkout of a
	// pooled connection. Its Site is then this resource's Site, and Stack
	// and FirstIOStack say who dialed it. Nil when nothing holds it.
	HeldBy *Resource
	// Idle is true while the resource is idle in its pool (see
	// Handle.SetIdle): a pooled connection nobody has checked out, and the
	// socket it holds is then not in use by the program either.
	Idle bool
	// CloseStack is where the resource was closed, in the Leak of a
	// resolved event (WithOnResolved); empty while open. It is recorded for
	// resources that could have been reported leaked (whose peer had closed,
	// or whose kind has a hold limit), and left empty for other Closes and
	// for a reported leak that the runtime collected.
	CloseStack Stack
	// Collected is true for a resource garbage-collected without Close; its
	// State is StateClosed.
	Collected bool
	// Span is the span that was active in the context of the dial
	// (WrapDialer) or given to Track (TrackContext) when the resource was
	// opened: the request or query that opened it. Leak spans link to it.
	// Invalid when there was none.
	Span trace.SpanContext
	// Attributes are the OpenTelemetry attributes an integration gave
	// Track (TrackAttributes), carried by the resource's leak spans.
	Attributes []attribute.KeyValue
}

// Site is the resource's headline: the user's line that owns it. For a
// connection held by another resource (HeldBy) it is the holder's; for an
// accepted connection, the first Read or Write when it names a line of the
// program (the accept loop is shared by every connection), else the accept
// loop's line: a server such as net/http's reads first on its own
// goroutine.
func (r Resource) Site() Site {
	if r.HeldBy != nil {
		return r.HeldBy.Site()
	}
	if r.Accepted && !r.FirstIOStack.IsZero() {
		if s := r.FirstIOStack.Site(); s.Frame != (Frame{}) {
			return s
		}
		if s := r.Stack.Site(); s.Frame != (Frame{}) {
			return s
		}
		return r.FirstIOStack.Site()
	}
	return r.Stack.Site()
}

// Leak is a resource judged leaked, and why.
type Leak struct {
	Resource
	Reason Reason
	// For is how long the resource has been leaking, as of the event: for
	// ReasonPeerClosed from PeerClosedAt (so it may be short of the time
	// since the FIN by up to one poll interval), for ReasonHeldTooLong from
	// OpenedAt, and for ReasonCollected from OpenedAt to the collection. In
	// a resolved event (WithOnResolved) it ends at ClosedAt.
	For time.Duration
}
