//go:build linux

package sock

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The poll shows a healthy socket open, and stops doing so once the peer's
// FIN has arrived, even behind data the program has not read, or once the
// peer has reset the connection; it never says open for what it cannot see.
func TestPollShowsOpen(t *testing.T) {
	client, server := tcpPair(t, "tcp", "127.0.0.1:0")
	var h Handle
	h.Describe(client, "tcp")
	require.True(t, h.OK)
	assert.True(t, PollShowsOpen(h))

	_, err := server.Write([]byte("unread"))
	require.NoError(t, err)
	require.NoError(t, server.Close())
	deadline := time.Now().Add(2 * time.Second)
	for PollShowsOpen(h) {
		require.True(t, time.Now().Before(deadline), "the FIN behind unread data was never seen")
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, PeerClosed, ProbeSocket(h).State, "what the poll saw, TCP_INFO confirms")

	reset, server2 := tcpPair(t, "tcp", "127.0.0.1:0")
	var hr Handle
	hr.Describe(reset, "tcp")
	require.NoError(t, server2.(*net.TCPConn).SetLinger(0))
	require.NoError(t, server2.Close()) // an RST, not a FIN
	for PollShowsOpen(hr) {
		require.True(t, time.Now().Before(deadline), "the reset was never seen")
		time.Sleep(time.Millisecond)
	}

	assert.False(t, PollShowsOpen(Handle{}), "no descriptor: cannot tell")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udp.Close()
	var hu Handle
	hu.Describe(udp.(net.Conn), "udp")
	assert.False(t, PollShowsOpen(hu), "not a stream: cannot tell")
}
