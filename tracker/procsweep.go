package tracker

import (
	"net"
	"sort"
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
}

// trackedCookies maps the socket cookie of every open record of t that has
// one (wrapped connections and listeners) to the record's id. Cookies, unlike
// descriptor numbers, are never reused, so a socket that took over the number
// of a closed tracked one is not mistaken for it.
func (t *Tracker) trackedCookies() map[uint64]uint64 {
	m := make(map[uint64]uint64)
	for _, r := range t.all() {
		if r.sock.ok && State(r.state.Load()) != StateClosed && r.identify() {
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
func listenerSocket(l net.Listener) (h sockHandle, cookie uint64) {
	if h.fd, h.ok = descriptorOf(l); h.ok {
		cookie = socketCookie(h.fd)
	}
	return h, cookie
}

func sortSockets(s []Socket) {
	sort.Slice(s, func(i, j int) bool { return s[i].FD < s[j].FD })
}
