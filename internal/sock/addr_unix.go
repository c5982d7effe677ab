//go:build unix

package sock

import (
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// AddrString formats a socket address exactly as package net formats the
// address of a connection: an IPv4 or IPv6 address as net.TCPAddr.String
// does (IPv4-mapped IPv6 as plain IPv4, a zone by its interface's name, or
// its number when the interface is gone), a unix address by its path. It
// is the one formatter behind the tracker's identity check and the process
// sweep, so that both agree with the net.Addr of a wrapped connection.
func AddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port, Zone: zoneName(a.ZoneId)}).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}

// zoneName names an IPv6 zone as package net does: the interface's name,
// or its index when no interface has it.
func zoneName(index uint32) string {
	if index == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}
