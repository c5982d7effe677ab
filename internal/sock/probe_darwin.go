//go:build darwin

package sock

import (
	"net"

	"golang.org/x/sys/unix"
)

// macOS TCP states (netinet/tcp_fsm.h), numbered differently from Linux.
const (
	darwinClosed      = 0
	darwinListen      = 1
	darwinSynSent     = 2
	darwinSynReceived = 3
	darwinEstablished = 4
	darwinCloseWait   = 5
	darwinFinWait1    = 6
	darwinClosing     = 7
	darwinLastAck     = 8
	darwinFinWait2    = 9
	darwinTimeWait    = 10
)

var darwinStateNames = [...]string{
	darwinClosed: "CLOSED", darwinListen: "LISTEN", darwinSynSent: "SYN_SENT",
	darwinSynReceived: "SYN_RECEIVED", darwinEstablished: "ESTABLISHED", darwinCloseWait: "CLOSE_WAIT",
	darwinFinWait1: "FIN_WAIT_1", darwinClosing: "CLOSING", darwinLastAck: "LAST_ACK",
	darwinFinWait2: "FIN_WAIT_2", darwinTimeWait: "TIME_WAIT",
}

// HasCookies is whether this system has socket cookies (SO_COOKIE).
const HasCookies = false

// Cookie is 0: socket cookies are Linux's.
func Cookie(uintptr) uint64 { return 0 }

// ProbeSocket asks the kernel for the TCP state of a TCP socket, which sees
// a FIN even behind unread data, and peeks at other stream sockets.
func ProbeSocket(h Handle) Probe {
	if !h.OK || !h.Stream {
		return Probe{}
	}
	if !h.TCP {
		return peek(h.FD)
	}
	info, err := unix.GetsockoptTCPConnectionInfo(int(h.FD), unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
	if err != nil {
		return peek(h.FD)
	}
	st := info.State
	p := Probe{Name: "UNKNOWN"}
	if int(st) < len(darwinStateNames) {
		p.Name = darwinStateNames[st]
	}
	switch st {
	case darwinCloseWait, darwinClosing, darwinLastAck, darwinTimeWait: // the peer's FIN has arrived
		p.State = PeerClosed
	case darwinClosed: // with the descriptor still open: reset
		p.State = Reset
	default:
		p.State = Open
	}
	return p
}

// SameAddrs is true: without cookies, the tracker's own bookkeeping tells a
// reused descriptor from the original.
func SameAddrs(uintptr, net.Addr, net.Addr) bool { return true }
