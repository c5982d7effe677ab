//go:build linux

package sock

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// List lists every socket this process has open, read from /proc/self/fd
// and getsockopt on each descriptor: its type, local and remote address
// and, for TCP, the kernel state. It is the in-process answer to
// lsof -p PID -iTCP: it forks nothing, reads no socket data and changes
// nothing. The result is sorted by descriptor and is a snapshot: sockets
// opened or closed while it runs may be missing or present.
func List() ([]Socket, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("process sweep: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("process sweep: %w", err)
	}
	out := make([]Socket, 0, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if s, ok := inspectSocket(fd); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out, nil
}

// inspectSocket describes the socket at fd, and returns its cookie. It
// returns false when fd is not a socket (any more). The descriptor may be
// closed and its number reused while it is read; the cookie is read before
// and after, and a socket that changed under the reads is read again once.
func inspectSocket(fd int) (Socket, bool) {
	for range 2 {
		before, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return Socket{}, false
		}
		s, ok := describeSocket(fd)
		after, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return Socket{}, false
		}
		if before == after {
			s.Cookie = after
			return s, ok
		}
	}
	return Socket{}, false
}

func describeSocket(fd int) (Socket, bool) {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return Socket{}, false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Socket{}, false
	}
	proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	s := Socket{FD: fd, Network: socketNetwork(domain, typ, proto)}
	var mapped bool
	if sa, err := unix.Getsockname(fd); err == nil {
		s.LocalAddr, mapped = AddrString(sa), isMapped(sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		s.RemoteAddr = AddrString(sa)
	}
	if mapped {
		// An IPv4 connection on a dual-stack socket: Go's net names it
		// "tcp" with IPv4 addresses, and so does the sweep.
		switch s.Network {
		case "tcp6":
			s.Network = "tcp"
		case "udp6":
			s.Network = "udp"
		}
	}
	if s.Network == "tcp" || s.Network == "tcp6" {
		if st, err := tcpState(uintptr(fd)); err == nil {
			s.State = TCPStateName(st)
		}
	}
	return s, true
}

// socketNetwork names a socket the way Go's net package names networks.
func socketNetwork(domain, typ, proto int) string {
	switch domain {
	case unix.AF_INET, unix.AF_INET6:
		six := ""
		if domain == unix.AF_INET6 {
			six = "6"
		}
		switch {
		case typ == unix.SOCK_STREAM && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP):
			// Go listens with Multipath TCP by default and calls it tcp;
			// so do ss and lsof.
			return "tcp" + six
		case typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP:
			return "udp" + six
		default:
			return "ip" + six + ":" + strconv.Itoa(proto)
		}
	case unix.AF_UNIX:
		switch typ {
		case unix.SOCK_STREAM:
			return "unix"
		case unix.SOCK_DGRAM:
			return "unixgram"
		case unix.SOCK_SEQPACKET:
			return "unixpacket"
		}
		return "unix:" + strconv.Itoa(typ)
	case unix.AF_NETLINK:
		return "netlink"
	case unix.AF_PACKET:
		return "packet"
	case unix.AF_VSOCK:
		return "vsock"
	}
	return "af" + strconv.Itoa(domain)
}

// isMapped reports whether sa is an IPv4 address on an IPv6 socket.
func isMapped(sa unix.Sockaddr) bool {
	a, ok := sa.(*unix.SockaddrInet6)
	return ok && net.IP(a.Addr[:]).To4() != nil
}
