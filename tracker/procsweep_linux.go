//go:build linux

package tracker

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ProcessSockets lists every socket this process has open, wrapped or not,
// read from /proc/self/fd and getsockopt on each descriptor: its type, local
// and remote address and, for TCP, the kernel state. It is the in-process
// answer to lsof -p PID -iTCP: it forks nothing, reads no socket data and
// changes nothing. Sockets owned by a wrapper of t are marked Tracked, matched
// by the kernel's socket cookie rather than by descriptor number. The result
// is sorted by descriptor and is a snapshot: sockets opened or closed while
// it runs may be missing or present. On systems other than Linux it returns
// an error wrapping errors.ErrUnsupported.
func (t *Tracker) ProcessSockets() ([]Socket, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("connleak/tracker: process sweep: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("connleak/tracker: process sweep: %w", err)
	}
	tracked := t.trackedCookies()
	out := make([]Socket, 0, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		s, cookie, ok := inspectSocket(fd)
		if !ok {
			continue
		}
		if id, ok := tracked[cookie]; ok && cookie != 0 {
			s.Tracked, s.ResourceID = true, id
		}
		out = append(out, s)
	}
	sortSockets(out)
	return out, nil
}

// inspectSocket describes the socket at fd, and returns its cookie. It
// returns false when fd is not a socket (any more). The descriptor may be
// closed and its number reused while it is read; the cookie is read before
// and after, and a socket that changed under the reads is read again once.
func inspectSocket(fd int) (Socket, uint64, bool) {
	for range 2 {
		before, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return Socket{}, 0, false
		}
		s, ok := describeSocket(fd)
		after, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return Socket{}, 0, false
		}
		if before == after {
			return s, after, ok
		}
	}
	return Socket{}, 0, false
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
		s.LocalAddr, mapped = formatSockaddr(sa)
	}
	if sa, err := unix.Getpeername(fd); err == nil {
		s.RemoteAddr, _ = formatSockaddr(sa)
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
			s.State = tcpStateName(st)
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

// formatSockaddr formats an address as Go's net package does, and says
// whether it was an IPv4-mapped IPv6 address (shown as IPv4).
func formatSockaddr(sa unix.Sockaddr) (string, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), false
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		if ip.Is4In6() {
			return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)).String(), true
		}
		if a.ZoneId != 0 {
			ip = ip.WithZone(strconv.Itoa(int(a.ZoneId)))
		}
		return netip.AddrPortFrom(ip, uint16(a.Port)).String(), false
	case *unix.SockaddrUnix:
		return a.Name, false
	}
	return "", false
}
