package tracker

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kernel path: the program never reads, so only a socket probe can see
// that the peer has gone.
func TestPeerCloseFoundByProbe(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows; the Read path is tested elsewhere")
	}
	tr, log := newTestTracker(t)
	client, server := dialPair(t, tr)
	require.NoError(t, server.Close())

	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }),
		"peer close not detected by the probe")
	l := log.Leaks()[0]
	assert.Equal(t, ReasonPeerClosed, l.Reason)
	assert.Equal(t, StatePeerClosed, l.State)
	assert.Equal(t, client.LocalAddr().String(), l.LocalAddr)
	assert.Equal(t, client.RemoteAddr().String(), l.RemoteAddr)
	if runtime.GOOS == "linux" {
		assert.Equal(t, "CLOSE_WAIT", l.SocketState)
	}
	assert.True(t, l.PeerCloseSeenStack.IsZero(), "the program never read, so it never saw the close")
	assert.Contains(t, l.Site().File, "helpers_test.go", "headline must be the line that dialed")

	// Reported once, however many ticks follow.
	tr.Poll()
	tr.Poll()
	assert.Len(t, log.Leaks(), 1)
	assert.Len(t, tr.Leaks(), 1)
}

// The portable path: the program's own Read returns EOF.
func TestPeerCloseSeenByRead(t *testing.T) {
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour))
	client, server := dialPair(t, tr)
	require.NoError(t, server.Close())

	_, err := client.Read(make([]byte, 16)) // line that sees the EOF
	require.ErrorIs(t, err, io.EOF)

	open := tr.Open()
	require.Len(t, open, 1)
	assert.Equal(t, StatePeerClosed, open[0].State)
	assert.False(t, open[0].PeerClosedAt.IsZero())
	seen := open[0].PeerCloseSeenStack.Site()
	assert.Equal(t, "github.com/connleak/connleak/tracker.TestPeerCloseSeenByRead", seen.Function)
	assert.Contains(t, seen.File, "tracker_test.go")
	assert.Empty(t, tr.Leaks(), "inside the grace period nothing is leaked")
}

// A reset (RST, kernel state CLOSE with the fd still open) is a peer close too,
// seen by the probe and by Read.
func TestResetIsStillReported(t *testing.T) {
	for _, read := range []bool{false, true} {
		name := "probe"
		if read {
			name = "read"
		}
		t.Run(name, func(t *testing.T) {
			if !read && runtime.GOOS == "windows" {
				t.Skip("no socket probe on windows")
			}
			tr, log := newTestTracker(t)
			client, server := dialPair(t, tr)
			// Unread data at close makes the kernel send RST, and SetLinger(0)
			// does so regardless.
			require.NoError(t, server.(*net.TCPConn).SetLinger(0))
			require.NoError(t, server.Close())
			if read {
				time.Sleep(20 * time.Millisecond)
				_, err := client.Read(make([]byte, 1))
				require.Error(t, err)
				require.True(t, sock.IsReset(err), "want a reset, got %v", err)
			}
			require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }),
				"reset connection not reported")
			l := log.Leaks()[0]
			assert.Equal(t, ReasonPeerClosed, l.Reason)
			if runtime.GOOS == "linux" && !read {
				assert.Equal(t, "CLOSE", l.SocketState)
			}
		})
	}
}

// A peer that half-closes and waits for the reply is served for longer than
// the grace period: as long as this side keeps writing, it is not a leak.
// Once the writer stops without closing, it is.
func TestHalfCloseReplyIsNotALeak(t *testing.T) {
	const grace = 100 * time.Millisecond
	tr, log := newTestTracker(t, WithGracePeriod(grace))
	server := halfClosedServer(t, tr)
	_, err := io.ReadAll(server)
	require.NoError(t, err) // the request ended with the peer's FIN

	end := time.Now().Add(4 * grace)
	for time.Now().Before(end) {
		_, err := server.Write([]byte("still replying\n"))
		require.NoError(t, err)
		tr.Poll()
		time.Sleep(grace / 5)
	}
	assert.Empty(t, log.Leaks(), "a reply still being written is not a leak")
	res := tr.Open()
	require.Len(t, res, 2) // the listener and the accepted conn
	assert.Equal(t, StatePeerClosed, res[1].State)

	// The reply is done but the handler forgot to Close: after the grace
	// period, that is a leak.
	require.True(t, pollUntil(t, tr, 10*grace, func() bool { return len(log.Leaks()) == 1 }))
	assert.Contains(t, log.Leaks()[0].Site().File, "tracker_test.go")
}

// A listener has no peer: it is never judged peer-closed, however long it
// stays open, and it is listed by Open until it is closed.
func TestListenerNeverReportedPeerClosed(t *testing.T) {
	tr, log := newTestTracker(t)
	raw := listen(t)
	ln := tr.WrapListener(raw)
	// Clients come and go; the listener stays.
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		c.Close()
		s.Close()
	}
	for range 3 {
		tr.Poll()
	}
	assert.Empty(t, log.Leaks())
	assert.Empty(t, tr.Leaks())
	open := tr.Open()
	require.Len(t, open, 1)
	assert.Equal(t, KindListener, open[0].Kind)
	assert.Equal(t, StateActive, open[0].State)
	assert.Equal(t, raw.Addr().String(), open[0].LocalAddr)

	require.NoError(t, ln.Close())
	assert.Empty(t, tr.Open())
	assert.ErrorIs(t, ln.Close(), net.ErrClosed)
}

// A leak closed later emits a resolved event, with where it was closed.
func TestLeakClosedLaterIsResolved(t *testing.T) {
	tr, log := newTestTracker(t)
	client, server := dialPair(t, tr)
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Empty(t, log.Resolved())

	require.NoError(t, client.Close()) // the late close
	tr.Poll()
	res := log.Resolved()
	require.Len(t, res, 1)
	assert.Equal(t, log.Leaks()[0].ID, res[0].ID)
	assert.Equal(t, StateClosed, res[0].State)
	assert.Contains(t, res[0].CloseStack.Site().Function, "TestLeakClosedLaterIsResolved")
	assert.Empty(t, tr.Leaks())
	tr.Poll()
	assert.Len(t, log.Resolved(), 1, "resolved once")
}

// A conn the program dropped without Close is collected, the runtime closes
// its socket, and the tracker reports it once with the open-site stack.
func TestCollectedWithoutCloseReportedOnce(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour))
	ln := listen(t)
	dropConn(t, tr, ln.Addr().String()) // opened and dropped in a helper frame
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	ok := pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		return len(log.Leaks()) > 0
	})
	require.True(t, ok, "dropped conn never reported collected: does the tracker keep it reachable?")
	l := log.Leaks()[0]
	assert.Equal(t, ReasonCollected, l.Reason)
	assert.Equal(t, StateClosed, l.State)
	assert.Equal(t, "github.com/connleak/connleak/tracker.dropConn", l.Site().Function)
	assert.Contains(t, l.String(), "garbage-collected without Close")

	// The runtime closed the socket: the peer reads EOF.
	require.NoError(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := io.ReadAll(server)
	assert.NoError(t, err, "ReadAll ends at the EOF the runtime's close sent")
	assert.Equal(t, "x", string(got))

	for range 3 {
		runtime.GC()
		tr.Poll()
	}
	assert.Len(t, log.Leaks(), 1, "reported once")
	assert.Empty(t, tr.Open())
	require.Len(t, collectedLeaks(tr), 1)
}

//go:noinline
func dropConn(t *testing.T, tr *Tracker, addr string) {
	c, err := tr.WrapDialer(nil)(t.Context(), "tcp", addr)
	require.NoError(t, err)
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
}

// The background poller finds a leak without anyone calling Poll.
func TestPollerRunsInBackground(t *testing.T) {
	got := make(chan Leak, 1)
	tr := New(WithPollInterval(10*time.Millisecond), WithGracePeriod(0), WithLogger(nil),
		WithOnLeak(func(l Leak) { got <- l }))
	defer tr.Close()
	_, server := dialPair(t, tr)
	server.Close()
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	select {
	case l := <-got:
		assert.Equal(t, ReasonPeerClosed, l.Reason)
	case <-time.After(5 * time.Second):
		t.Fatal("the poller reported nothing")
	}
}

func TestCallbackPanicIsRecovered(t *testing.T) {
	var logged strings.Builder
	tr := New(WithPollInterval(time.Hour), WithGracePeriod(0), WithLogger(newTextLogger(&logged)),
		WithOnLeak(func(Leak) { panic("user bug") }))
	defer tr.Close()
	_ = tr.Track("x")
	h := tr.Track("y")
	h.Close()
	func() { _ = tr.Track("z") }()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		return strings.Contains(logged.String(), "callback panicked")
	}))
	assert.Contains(t, logged.String(), "user bug")
}

// slowReader yields a little data every tick until its time is up: a reply
// produced slowly, copied by one long ReadFrom.
type slowReader struct {
	until time.Time
	tick  time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if time.Now().After(s.until) {
		return 0, io.EOF
	}
	time.Sleep(s.tick)
	return copy(p, "slow reply\n"), nil
}

// One io.Copy that keeps writing a reply to a half-closed peer for longer
// than the grace period is busy, not quiet: no leak while it runs.
func TestLongCopyToHalfClosedPeerIsNotALeak(t *testing.T) {
	const grace = 60 * time.Millisecond
	tr, log := newTestTracker(t, WithGracePeriod(grace))
	server := halfClosedServer(t, tr)
	_, err := io.ReadAll(server)
	require.NoError(t, err) // the request ended with the peer's FIN

	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(server, &slowReader{until: time.Now().Add(6 * grace), tick: grace / 6})
		copied <- err
	}()
	for done := false; !done; {
		select {
		case err := <-copied:
			require.NoError(t, err)
			done = true
		case <-time.After(grace / 6):
			tr.Poll()
		}
	}
	assert.Empty(t, log.Leaks(), "a copy still writing the reply is not a leak")
	require.True(t, pollUntil(t, tr, 20*grace, func() bool { return len(log.Leaks()) == 1 }),
		"once the copy is over and the conn left open, it is")
}

// In a proxy's io.Copy(client, upstream), a client that resets is the
// client's peer close, never the upstream's.
func TestCopyErrorIsNotBlamedOnTheOtherSide(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour))
	upstream, upstreamPeer := dialPair(t, tr)
	client, clientPeer := dialPair(t, tr)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			if _, err := upstreamPeer.Write(buf); err != nil {
				return
			}
		}
	}()
	require.NoError(t, clientPeer.(*net.TCPConn).SetLinger(0))
	go func() {
		time.Sleep(20 * time.Millisecond)
		clientPeer.Close() // RST
	}()
	_, err := io.Copy(client, upstream)
	require.Error(t, err)
	var up, cl Resource
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool {
		for _, r := range tr.Open() {
			switch r.ID {
			case idOf(upstream):
				up = r
			case idOf(client):
				cl = r
			}
		}
		return cl.State == StatePeerClosed
	}), "the client's reset is found")
	assert.Equal(t, StateActive, up.State, "the healthy upstream is not peer-closed")
	assert.Empty(t, log.Leaks())
}

// A leak reported, then dropped and collected, is one leak and one
// resolution, never a second leak.
func TestReportedLeakThenCollectedIsResolvedOnce(t *testing.T) {
	tr, log := newTestTracker(t)
	ln := listen(t)
	func() {
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		s.Close()
		require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
		_ = c // dropped here, never closed
	}()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		return len(log.Resolved()) == 1
	}), "the collected leak resolves")
	for range 3 {
		runtime.GC()
		tr.Poll()
	}
	assert.Len(t, log.Leaks(), 1)
	assert.Equal(t, ReasonPeerClosed, log.Leaks()[0].Reason)
	assert.Len(t, log.Resolved(), 1)
}

// A callback may Close its tracker, or Poll it, without deadlocking the
// poller that runs it.
func TestCallbackMayCloseAndPoll(t *testing.T) {
	closed := make(chan struct{})
	var tr *Tracker
	tr = New(WithPollInterval(10*time.Millisecond), WithGracePeriod(0), WithLogger(nil),
		WithOnLeak(func(Leak) {
			tr.Poll() // a no-op here
			tr.Close()
			close(closed)
		}))
	defer tr.Close()
	_ = tr.Track("x")
	func() { _ = tr.Track("dropped") }()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-closed:
			return
		case <-deadline:
			t.Fatal("Close from a callback deadlocked (or nothing was reported)")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Unix stream sockets are probed with recv(MSG_PEEK).
func TestUnixPeerCloseFoundByPeek(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows: a peer close is seen only by Read")
	}
	tr, log := newTestTracker(t)
	_, s := unixPair(t, tr)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Equal(t, "PEER_CLOSED", log.Leaks()[0].SocketState)
}
