//go:build unix

package sock

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer ln.Close()
	client, err = net.Dial(network, ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// The peek probe on TCP: blind to a FIN behind unread data, exact otherwise.
func TestPeekOnTCP(t *testing.T) {
	client, server := tcpPair(t, "tcp", "127.0.0.1:0")
	var h Handle
	h.Describe(client, "tcp")
	require.True(t, h.OK)
	assert.Equal(t, Open, peek(h.FD).State)
	_, err := server.Write([]byte("unread"))
	require.NoError(t, err)
	require.NoError(t, server.Close())
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, Open, peek(h.FD).State, "unread data hides the FIN from a peek")
	_, err = io.ReadFull(client, make([]byte, 6))
	require.NoError(t, err)
	assert.Equal(t, PeerClosed, peek(h.FD).State)
}

func TestProbeSocketSeesPeerClose(t *testing.T) {
	client, server := tcpPair(t, "tcp", "127.0.0.1:0")
	var h Handle
	h.Describe(client, "tcp")
	require.True(t, h.OK && h.TCP && h.Stream)
	h.Cookie = Cookie(h.FD)
	p := ProbeSocket(h)
	assert.Equal(t, Open, p.State)
	require.NoError(t, server.Close())
	deadline := time.Now().Add(2 * time.Second)
	for ProbeSocket(h).State != PeerClosed && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p = ProbeSocket(h)
	assert.Equal(t, PeerClosed, p.State)
	if HasCookies {
		assert.Equal(t, "CLOSE_WAIT", p.Name)
	}
}

func TestDescribeWithoutDescriptor(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var h Handle
	h.Describe(a, "pipe")
	assert.Equal(t, Handle{}, h)
	_, ok := Descriptor(a)
	assert.False(t, ok)
}
