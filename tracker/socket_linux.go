//go:build linux

package tracker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux TCP states (include/net/tcp_states.h).
var linuxTCPStates = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

const probeName = "getsockopt(TCP_INFO)"

// socketCookie returns the kernel's unique id of the socket behind fd, which
// stays the same for the socket's life and is never reused, unlike fd numbers.
func socketCookie(fd uintptr) uint64 {
	c, err := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return 0
	}
	return c
}

// tcpState reads tcpi_state, the first byte of struct tcp_info. Asking for a
// short option length makes the kernel copy only that much, which keeps the
// probe to one cheap system call with no allocation.
func tcpState(fd uintptr) (uint8, error) {
	var info [8]byte
	l := uint32(len(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return 0, errno
	}
	return info[0], nil
}

func probeSocket(h sockHandle) sockProbe {
	if !h.ok || !h.stream {
		return sockProbe{}
	}
	if !h.tcp {
		return peekSocket(h.fd)
	}
	st, err := tcpState(h.fd)
	if err != nil {
		return sockProbe{}
	}
	p := sockProbe{name: tcpStateName(st)}
	switch st {
	case 8, 9, 11, 6: // CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT: the peer's FIN has arrived
		p.state = sockPeerClosed
	case 7: // CLOSE with the fd still open: reset, or both sides done
		p.state = sockReset
	default:
		p.state = sockOpen
	}
	if p.state >= sockPeerClosed && h.cookie != 0 && socketCookie(h.fd) != h.cookie {
		// The descriptor now belongs to another socket: ours is gone.
		return sockProbe{}
	}
	return p
}

func tcpStateName(st uint8) string {
	if int(st) < len(linuxTCPStates) && linuxTCPStates[st] != "" {
		return linuxTCPStates[st]
	}
	return "UNKNOWN"
}
