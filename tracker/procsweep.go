package tracker

import (
	"net"
	"sort"
	"syscall"
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
		if r.sock.ok && r.sock.cookie != 0 && State(r.state.Load()) != StateClosed {
			m[r.sock.cookie] = r.id
		}
	}
	return m
}

// listenerSocket identifies the socket under a listener so that the process
// sweep can tell it is tracked. Listeners are not watched by the engine: a
// listener has no peer.
func listenerSocket(l net.Listener) sockHandle {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return sockHandle{}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return sockHandle{}
	}
	var h sockHandle
	if raw.Control(func(fd uintptr) { h.fd, h.ok = fd, true }) != nil {
		return sockHandle{}
	}
	if h.ok {
		h.cookie = socketCookie(h.fd)
	}
	return h
}

func sortSockets(s []Socket) {
	sort.Slice(s, func(i, j int) bool { return s[i].FD < s[j].FD })
}
