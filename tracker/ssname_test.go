package tracker

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tracked connection whose peer has closed reads CLOSE-WAIT, as ss would
// show it; a swept listener reads LISTEN.
func TestSSNameOfProbedStates(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the kernel's TCP state is probed on Linux and macOS only")
	}
	tr, _ := newTestTracker(t)
	client, server := dialPair(t, tr)
	require.NoError(t, server.Close())
	var state string
	pollUntil(t, tr, 2*time.Second, func() bool {
		for _, r := range tr.Open() {
			if r.ID == idOf(client) {
				state = r.SocketState
			}
		}
		return state == "CLOSE_WAIT"
	})
	assert.Equal(t, "CLOSE-WAIT", SSName(state))

	if runtime.GOOS == "linux" {
		ln := tr.WrapListener(listen(t))
		defer ln.Close()
		socks, err := tr.ProcessSockets()
		require.NoError(t, err)
		s, ok := findSocket(t, socks, ln.Addr().String(), "")
		require.True(t, ok, "the listener is missing from the sweep")
		assert.Equal(t, "LISTEN", SSName(s.State))
	}
	assert.Equal(t, "", SSName(""), "a socket that is not TCP has no state")
}
