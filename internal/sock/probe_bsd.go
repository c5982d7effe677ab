//go:build unix && !linux && !darwin

package sock

import "net"

// HasCookies is whether this system has socket cookies (SO_COOKIE).
const HasCookies = false

// Cookie is 0: socket cookies are Linux's.
func Cookie(uintptr) uint64 { return 0 }

// ProbeSocket peeks at a stream socket: recv(MSG_PEEK|MSG_DONTWAIT) returns
// 0 at the end of the stream. It is blind when unread data precedes the FIN.
func ProbeSocket(h Handle) Probe {
	if !h.OK || !h.Stream {
		return Probe{}
	}
	return peek(h.FD)
}

// SameAddrs is true: without cookies, the tracker's own bookkeeping tells a
// reused descriptor from the original.
func SameAddrs(uintptr, net.Addr, net.Addr) bool { return true }
