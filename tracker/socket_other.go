//go:build !unix

package tracker

import (
	"errors"
	"syscall"
)

const probeName = "none (Read/Write observation only)"

func socketCookie(uintptr) uint64 { return 0 }

// probeSocket has no kernel source on this system; peer close is learned from
// the program's own Reads and Writes.
func probeSocket(sockHandle) sockProbe { return sockProbe{} }

func isResetError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	// WSAECONNRESET, WSAECONNABORTED and the POSIX numbers other systems use.
	return errno == 10054 || errno == 10053 || errno == syscall.ECONNRESET || errno == syscall.EPIPE
}
