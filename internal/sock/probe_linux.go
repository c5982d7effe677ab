//go:build linux

package sock

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux TCP states, as tcpi_state numbers them (include/net/tcp_states.h).
const (
	TCPEstablished = 1
	TCPSynSent     = 2
	TCPSynRecv     = 3
	TCPFinWait1    = 4
	TCPFinWait2    = 5
	TCPTimeWait    = 6
	TCPClose       = 7
	TCPCloseWait   = 8
	TCPLastAck     = 9
	TCPListen      = 10
	TCPClosing     = 11
)

// tcpStateNames are the names ss and netstat give the states.
var tcpStateNames = [...]string{
	TCPEstablished: "ESTABLISHED", TCPSynSent: "SYN_SENT", TCPSynRecv: "SYN_RECV",
	TCPFinWait1: "FIN_WAIT1", TCPFinWait2: "FIN_WAIT2", TCPTimeWait: "TIME_WAIT",
	TCPClose: "CLOSE", TCPCloseWait: "CLOSE_WAIT", TCPLastAck: "LAST_ACK",
	TCPListen: "LISTEN", TCPClosing: "CLOSING",
}

// HasCookies is whether this system has socket cookies (SO_COOKIE).
const HasCookies = true

// Cookie returns the kernel's unique id of the socket behind fd, which stays
// the same for the socket's life and is never reused, unlike descriptor
// numbers; 0 when it cannot be read.
func Cookie(fd uintptr) uint64 {
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

// ProbeSocket asks the kernel for the TCP state of a TCP socket, which sees
// a FIN even behind unread data, and peeks at other stream sockets. A socket
// found closed whose cookie no longer matches h's (when h has one) is not
// h's any more, and probes Unknown.
func ProbeSocket(h Handle) Probe {
	if !h.OK || !h.Stream {
		return Probe{}
	}
	if !h.TCP {
		p := peek(h.FD)
		if p.State >= PeerClosed && h.Cookie != 0 && Cookie(h.FD) != h.Cookie {
			return Probe{} // as below
		}
		return p
	}
	st, err := tcpState(h.FD)
	if err != nil {
		return Probe{}
	}
	p := Probe{Name: TCPStateName(st)}
	switch st {
	case TCPCloseWait, TCPLastAck, TCPClosing, TCPTimeWait: // the peer's FIN has arrived
		p.State = PeerClosed
	case TCPClose: // with the descriptor still open: reset, or both sides done
		p.State = Reset
	default:
		p.State = Open
	}
	if p.State >= PeerClosed && h.Cookie != 0 && Cookie(h.FD) != h.Cookie {
		// The descriptor now belongs to another socket: ours is gone.
		return Probe{}
	}
	return p
}

// PollShowsOpen reports whether a poll of h's socket, with no wait, shows
// no shutdown of its receiving side (the peer's FIN, even behind unread
// data), no hang-up and no error: then its peer has not closed it. It is
// one cheap system call, about half of ProbeSocket's TCP_INFO here, for a
// caller that asks at every use, such as a pool at every checkout; false
// means only that ProbeSocket must tell. The poll never blocks, so it skips
// the runtime's bookkeeping for a blocking call.
func PollShowsOpen(h Handle) bool {
	if !h.OK || !h.Stream {
		return false
	}
	fds := [1]unix.PollFd{{Fd: int32(h.FD), Events: unix.POLLRDHUP}}
	var now unix.Timespec // a zero timeout: report, do not wait
	n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1,
		uintptr(unsafe.Pointer(&now)), 0, 0, 0)
	return errno == 0 && n == 0
}

// TCPStateName is the name of a Linux TCP state number, "UNKNOWN" if none.
func TCPStateName(st uint8) string {
	if int(st) < len(tcpStateNames) && tcpStateNames[st] != "" {
		return tcpStateNames[st]
	}
	return "UNKNOWN"
}

// SameAddrs reports whether the TCP socket at fd has the given addresses,
// formatted as net.TCPAddr.String formats them. The peer address is gone
// after a reset (ENOTCONN); the local one is kept.
func SameAddrs(fd uintptr, laddr, raddr net.Addr) bool {
	if laddr != nil {
		sa, err := unix.Getsockname(int(fd))
		if err != nil || AddrString(sa) != laddr.String() {
			return false
		}
	}
	if raddr != nil {
		sa, err := unix.Getpeername(int(fd))
		if err == nil && AddrString(sa) != raddr.String() {
			return false
		}
		if err != nil && err != unix.ENOTCONN {
			return false
		}
	}
	return true
}
