//go:build unix

package tracker

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unix stream sockets are probed with recv(MSG_PEEK).
func TestUnixPeerCloseFoundByPeek(t *testing.T) {
	tr, log := newTestTracker(t)
	_, s := unixPair(t, tr)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Equal(t, "PEER_CLOSED", log.Leaks()[0].SocketState)
}

// The peek probe on TCP: blind to a FIN behind unread data, exact otherwise.
func TestPeekProbeOnTCP(t *testing.T) {
	tr, _ := newTestTracker(t)
	client, server := dialPair(t, tr)
	h := socketOf(Unwrap(client), "tcp")
	require.True(t, h.ok)
	assert.Equal(t, sockOpen, peekSocket(h.fd).state)
	_, err := server.Write([]byte("unread"))
	require.NoError(t, err)
	require.NoError(t, server.Close())
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, sockOpen, peekSocket(h.fd).state, "unread data hides the FIN from a peek")
	_, err = io.ReadFull(client, make([]byte, 6))
	require.NoError(t, err)
	assert.Equal(t, sockPeerClosed, peekSocket(h.fd).state)
}
