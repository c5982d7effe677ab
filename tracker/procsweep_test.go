package tracker

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// skipWithoutSweep skips where the process sweep is not supported.
func skipWithoutSweep(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the process sweep reads /proc/self/fd: Linux only")
	}
}

func findSocket(t *testing.T, socks []Socket, local, remote string) (Socket, bool) {
	t.Helper()
	for _, s := range socks {
		if s.LocalAddr == local && s.RemoteAddr == remote {
			return s, true
		}
	}
	return Socket{}, false
}

// A socket no wrapper ever saw, left in CLOSE_WAIT, is found with its
// state; a wrapped one and a wrapped listener are marked tracked.
func TestProcessSweepFindsUnwrappedLeak(t *testing.T) {
	skipWithoutSweep(t)
	tr, _ := newTestTracker(t)
	ln := listen(t)
	wln := tr.WrapListener(ln)

	leaked, err := net.Dial("tcp", ln.Addr().String()) // never wrapped
	require.NoError(t, err)
	defer leaked.Close()
	peer, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, peer.Close())

	client, server := dialPair(t, tr)

	var s Socket
	deadline := time.Now().Add(2 * time.Second)
	for {
		socks, err := tr.ProcessSockets()
		require.NoError(t, err)
		var ok bool
		s, ok = findSocket(t, socks, leaked.LocalAddr().String(), leaked.RemoteAddr().String())
		require.True(t, ok, "the unwrapped socket is missing from the sweep")
		if s.State == "CLOSE_WAIT" || time.Now().After(deadline) {
			w, ok := findSocket(t, socks, client.LocalAddr().String(), client.RemoteAddr().String())
			require.True(t, ok, "the wrapped socket is missing from the sweep")
			assert.True(t, w.Tracked)
			assert.Equal(t, tr.Open()[1].ID, w.ResourceID) // [0] is the listener
			assert.Equal(t, "ESTABLISHED", w.State)
			srv, ok := findSocket(t, socks, server.LocalAddr().String(), server.RemoteAddr().String())
			require.True(t, ok)
			assert.False(t, srv.Tracked, "the raw server side is not tracked")
			l, ok := findSocket(t, socks, ln.Addr().String(), "")
			require.True(t, ok, "the listener is missing from the sweep")
			assert.Equal(t, "LISTEN", l.State)
			assert.True(t, l.Tracked, "a wrapped listener is tracked")
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, "CLOSE_WAIT", s.State)
	assert.Equal(t, "tcp", s.Network)
	assert.False(t, s.Tracked)
	assert.Zero(t, s.ResourceID)
	assert.Positive(t, s.FD)
	require.NoError(t, wln.Close())
}

// After a tracked socket closes, a socket that reuses its descriptor number
// is not marked tracked: matching is by cookie.
func TestProcessSweepMatchesByCookie(t *testing.T) {
	skipWithoutSweep(t)
	tr, _ := newTestTracker(t)
	ln := listen(t)
	c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	s1, err := ln.Accept()
	require.NoError(t, err)
	defer s1.Close()
	fd := socketOf(Unwrap(c), "tcp").FD
	// Close the socket under the wrapper, so the record still says open.
	require.NoError(t, Unwrap(c).Close())
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	s2, err := ln.Accept()
	require.NoError(t, err)
	defer s2.Close()
	if socketOf(raw, "tcp").FD != fd {
		t.Skip("the descriptor number was not reused")
	}
	socks, err := tr.ProcessSockets()
	require.NoError(t, err)
	s, ok := findSocket(t, socks, raw.LocalAddr().String(), raw.RemoteAddr().String())
	require.True(t, ok)
	assert.Equal(t, int(fd), s.FD)
	assert.False(t, s.Tracked, "a reused descriptor number must not be matched")
	c.Close()
}

// The sweep counts the same TCP sockets as ss does for this process.
func TestProcessSweepMatchesSS(t *testing.T) {
	skipWithoutSweep(t)
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) is not installed")
	}
	tr, _ := newTestTracker(t)
	for range 3 {
		dialPair(t, tr)
	}
	leaked, err := net.Dial("tcp", listen(t).Addr().String())
	require.NoError(t, err)
	defer leaked.Close()

	needle := []byte("pid=" + strconv.Itoa(os.Getpid()) + ",fd=")
	var ours, theirs int
	for range 5 { // other goroutines of the test binary may open or close a socket meanwhile
		socks, err := tr.ProcessSockets()
		require.NoError(t, err)
		ours = 0
		for _, s := range socks {
			if s.Network == "tcp" || s.Network == "tcp6" {
				ours++
			}
		}
		out, err := exec.Command("ss", "-tanpH").Output()
		require.NoError(t, err)
		theirs = bytes.Count(out, needle)
		if ours == theirs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, theirs, ours, "ss and the sweep disagree on this process's TCP sockets")
	assert.GreaterOrEqual(t, ours, 3*2+3, "3 pairs, their listeners and the leaked one with its listener")
}
