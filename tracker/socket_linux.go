//go:build linux

package tracker

import (
	"net"
	"net/netip"
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

// identify reads the cookie of r's socket the first time the tracker needs
// it, on the poller rather than on the program's dial path. By then the
// descriptor number could in principle name another socket (a wrapper
// collected, its socket closed by the runtime before the tracker's cleanup
// ran, the number reused), so the socket's addresses must match the record's
// first. It reports whether the descriptor is still r's socket.
func (r *record) identify() bool {
	if r.cookie.Load() != 0 {
		return true
	}
	if !r.sock.ok || State(r.state.Load()) == StateClosed {
		return false
	}
	if r.sock.tcp && !sameTCPAddrs(r.sock.fd, r.laddr, r.raddr) {
		return false
	}
	// Zero (a kernel without SO_COOKIE) leaves the addresses as the only check.
	r.cookie.CompareAndSwap(0, socketCookie(r.sock.fd))
	return true
}

// sameTCPAddrs reports whether the socket at fd has the given addresses. The
// peer address is gone after a reset (ENOTCONN); the local one is kept.
func sameTCPAddrs(fd uintptr, laddr, raddr net.Addr) bool {
	if laddr != nil {
		sa, err := unix.Getsockname(int(fd))
		if err != nil || sockaddrString(sa) != laddr.String() {
			return false
		}
	}
	if raddr != nil {
		sa, err := unix.Getpeername(int(fd))
		if err == nil && sockaddrString(sa) != raddr.String() {
			return false
		}
		if err != nil && err != unix.ENOTCONN {
			return false
		}
	}
	return true
}

// sockaddrString formats a TCP socket address as net.TCPAddr.String does,
// IPv4-mapped addresses as plain IPv4.
func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)).String()
	}
	return ""
}
