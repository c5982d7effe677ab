package sock

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// AddrString must agree with net.TCPAddr.String for every address a
// wrapped connection can have, or the identity check would reject it.
func TestAddrStringMatchesTCPAddr(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		sa   unix.Sockaddr
		want net.TCPAddr
	}{
		{"IPv4", &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 80},
			net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}},
		{"IPv4 any", &unix.SockaddrInet4{Port: 0}, net.TCPAddr{IP: net.IPv4zero}},
		{"IPv6 loopback", &unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: 443},
			net.TCPAddr{IP: net.IPv6loopback, Port: 443}},
		{"IPv6", &unix.SockaddrInet6{Addr: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 7}, Port: 5432},
			net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 5432}},
		{"IPv6 zoned by a known interface", &unix.SockaddrInet6{Addr: [16]byte{0xfe, 0x80, 15: 1}, Port: 1, ZoneId: uint32(lo.Index)},
			net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "lo"}},
		{"IPv6 zoned by an unknown index", &unix.SockaddrInet6{Addr: [16]byte{0xfe, 0x80, 15: 1}, Port: 1, ZoneId: 99999},
			net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "99999"}},
		{"IPv4-mapped", &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}, Port: 8080},
			net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 8080}},
	} {
		assert.Equal(t, tc.want.String(), AddrString(tc.sa), tc.name)
	}
	assert.Equal(t, "/tmp/x.sock", AddrString(&unix.SockaddrUnix{Name: "/tmp/x.sock"}))
	assert.True(t, isMapped(&unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}))
	assert.False(t, isMapped(&unix.SockaddrInet6{Addr: [16]byte{15: 1}}))
}

// The identity check holds for real sockets, IPv4 and IPv6, and tells one
// end of a connection from the other.
func TestSameAddrs(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		c, s := tcpPair(t, tc.network, tc.addr)
		fd, ok := Descriptor(c)
		require.True(t, ok)
		assert.True(t, SameAddrs(fd, c.LocalAddr(), c.RemoteAddr()), tc.network)
		assert.False(t, SameAddrs(fd, s.LocalAddr(), s.RemoteAddr()), tc.network)
	}
}
