package tracker

import (
	"fmt"
	"net"

	"github.com/connleak/connleak/internal/sock"
)

// Socket is one socket of this process found by the process sweep.
type Socket struct {
	FD         int
	Network    string // "tcp", "tcp6", "udp", "unix", ...
	LocalAddr  string
	RemoteAddr string
	State      string // kernel state name, e.g. "ESTABLISHED", "CLOSE_WAIT", "LISTEN"; "" if not TCP
	Tracked    bool   // a wrapper of this Tracker owns it
	ResourceID uint64 // the tracked Resource.ID when Tracked
	// Cookie is the kernel's id of the socket (SO_COOKIE), which, unlike
	// its descriptor number, no later socket takes over; 0 when unknown.
	Cookie uint64
}

// trackedCookies maps the socket cookie of every open record of t that has
// one (wrapped connections and listeners) to the record's id. Cookies, unlike
// descriptor numbers, are never reused, so a socket that took over the number
// of a closed tracked one is not mistaken for it.
func (t *Tracker) trackedCookies() map[uint64]uint64 {
	m := make(map[uint64]uint64)
	for _, r := range t.all() {
		if r.sock.OK && State(r.state.Load()) != StateClosed && r.identify() {
			if c := r.cookie.Load(); c != 0 {
				m[c] = r.id
			}
		}
	}
	return m
}

// listenerSocket identifies the socket under a listener so that the process
// sweep can tell it is tracked. Listeners are not watched by the engine: a
// listener has no peer.
func listenerSocket(l net.Listener) (h sock.Handle, cookie uint64) {
	if h.FD, h.OK = sock.Descriptor(l); h.OK {
		cookie = sock.Cookie(h.FD)
	}
	return h, cookie
}

// ProcessSockets lists every socket this process has open, wrapped or not,
// read from /proc/self/fd and getsockopt on each descriptor: its type, local
// and remote address and, for TCP, the kernel state. It is the in-process
// answer to lsof -p PID -iTCP: it forks nothing, reads no socket data and
// changes nothing. Sockets owned by a wrapper of t are marked Tracked,
// matched by the kernel's socket cookie rather than by descriptor number.
// The result is sorted by descriptor and is a snapshot: sockets opened or
// closed while it runs may be missing or present. On systems other than
// Linux it returns an error wrapping errors.ErrUnsupported.
func (t *Tracker) ProcessSockets() ([]Socket, error) {
	socks, err := sock.List()
	if err != nil {
		return nil, fmt.Errorf("connleak/tracker: %w", err)
	}
	tracked := t.trackedCookies()
	out := make([]Socket, len(socks))
	for i, s := range socks {
		out[i] = Socket{FD: s.FD, Network: s.Network, LocalAddr: s.LocalAddr, RemoteAddr: s.RemoteAddr, State: s.State, Cookie: s.Cookie}
		if id, ok := tracked[s.Cookie]; ok && s.Cookie != 0 {
			out[i].Tracked, out[i].ResourceID = true, id
		}
	}
	return out, nil
}
