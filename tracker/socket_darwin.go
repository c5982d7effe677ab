//go:build darwin

package tracker

import "golang.org/x/sys/unix"

// macOS TCP states (netinet/tcp_fsm.h), numbered differently from Linux.
var darwinTCPStates = [...]string{
	0: "CLOSED", 1: "LISTEN", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "ESTABLISHED", 5: "CLOSE_WAIT",
	6: "FIN_WAIT_1", 7: "CLOSING", 8: "LAST_ACK", 9: "FIN_WAIT_2", 10: "TIME_WAIT",
}

const probeName = "getsockopt(TCP_CONNECTION_INFO)"

// socketCookie is Linux-only; elsewhere descriptors are told apart by the
// tracker's own close and cleanup bookkeeping.
func socketCookie(uintptr) uint64 { return 0 }

// probeSocket asks the kernel for the TCP state of a TCP socket, which sees
// a FIN even behind unread data, and peeks at other stream sockets.
func probeSocket(h sockHandle) sockProbe {
	if !h.ok || !h.stream {
		return sockProbe{}
	}
	if !h.tcp {
		return peekSocket(h.fd)
	}
	info, err := unix.GetsockoptTCPConnectionInfo(int(h.fd), unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
	if err != nil {
		return peekSocket(h.fd)
	}
	st := info.State
	p := sockProbe{name: "UNKNOWN"}
	if int(st) < len(darwinTCPStates) {
		p.name = darwinTCPStates[st]
	}
	switch st {
	case 5, 7, 8, 10: // CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT: the peer's FIN has arrived
		p.state = sockPeerClosed
	case 0: // CLOSED with the descriptor still open: reset
		p.state = sockReset
	default:
		p.state = sockOpen
	}
	return p
}
