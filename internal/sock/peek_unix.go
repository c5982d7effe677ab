//go:build unix

package sock

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// peek asks whether a read would see end of stream, without consuming
// anything. It is blind when unread data precedes the FIN.
func peek(fd uintptr) Probe {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == nil && n == 0:
		return Probe{State: PeerClosed, Name: "PEER_CLOSED"}
	case err == nil:
		return Probe{State: Open, Name: "OPEN"}
	case errors.Is(err, unix.EAGAIN):
		return Probe{State: Open, Name: "OPEN"}
	case errors.Is(err, unix.ECONNRESET):
		return Probe{State: Reset, Name: "RESET"}
	}
	return Probe{}
}

// IsReset reports whether err from a Read or Write means the peer reset the
// connection (or it broke under a write).
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
