//go:build unix && !linux && !darwin

package tracker

const probeName = "recv(MSG_PEEK|MSG_DONTWAIT)"

// socketCookie is Linux-only; elsewhere descriptors are told apart by the
// tracker's own close and cleanup bookkeeping.
func socketCookie(uintptr) uint64 { return 0 }

func probeSocket(h sockHandle) sockProbe {
	if !h.ok || !h.stream {
		return sockProbe{}
	}
	return peekSocket(h.fd)
}
