//go:build !unix

package sock

import (
	"errors"
	"net"
	"syscall"
)

// HasCookies is whether this system has socket cookies (SO_COOKIE).
const HasCookies = false

// Cookie is 0: socket cookies are Linux's.
func Cookie(uintptr) uint64 { return 0 }

// ProbeSocket has no kernel source on this system: a peer close is learned
// from the program's own Reads and Writes.
func ProbeSocket(Handle) Probe { return Probe{} }

// SameAddrs is true: without cookies, the tracker's own bookkeeping tells a
// reused descriptor from the original.
func SameAddrs(uintptr, net.Addr, net.Addr) bool { return true }

// IsReset reports whether err from a Read or Write means the peer reset the
// connection (or it broke under a write).
func IsReset(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	// WSAECONNRESET, WSAECONNABORTED and the POSIX numbers other systems use.
	return errno == 10054 || errno == 10053 || errno == syscall.ECONNRESET || errno == syscall.EPIPE
}
