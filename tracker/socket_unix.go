//go:build unix

package tracker

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekSocket asks whether a read would see end of stream, without consuming
// anything. It is blind when unread data precedes the FIN.
func peekSocket(fd uintptr) sockProbe {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == nil && n == 0:
		return sockProbe{state: sockPeerClosed, name: "PEER_CLOSED"}
	case err == nil:
		return sockProbe{state: sockOpen, name: "OPEN"}
	case errors.Is(err, unix.EAGAIN):
		return sockProbe{state: sockOpen, name: "OPEN"}
	case errors.Is(err, unix.ECONNRESET):
		return sockProbe{state: sockReset, name: "RESET"}
	}
	return sockProbe{}
}

func isResetError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
