//go:build linux

package tracker

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func epollOf(t *testing.T, tr *Tracker) *epollEngine {
	t.Helper()
	e, ok := tr.engine.(*epollEngine)
	require.True(t, ok, "the Linux tracker must run the epoll engine, got %T", tr.engine)
	return e
}

// probed runs one engine tick (after handing it the records wrapped since
// the last one, as Poll does) and returns the ids it probed.
func probed(tr *Tracker) map[uint64]sock.Probe {
	got := make(map[uint64]sock.Probe)
	tr.pollMu.Lock()
	tr.promote()
	tr.engine.poll(func(r *record, p sock.Probe) { got[r.id] = p })
	tr.pollMu.Unlock()
	return got
}

// A tick probes only the sockets epoll reported: healthy ones cost nothing.
func TestEpollTickProbesOnlyPeerClosed(t *testing.T) {
	tr, _ := newTestTracker(t, WithFullSweepEvery(0))
	epollOf(t, tr)
	ln := listen(t)
	var servers []net.Conn
	var clients []net.Conn
	for range 50 {
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		clients, servers = append(clients, c), append(servers, s)
	}
	defer func() {
		for i := range clients {
			clients[i].Close()
			servers[i].Close()
		}
	}()
	// The first tick registers them, and probes each once.
	first := probed(tr)
	require.Len(t, first, 50)
	for _, p := range first {
		assert.Equal(t, "ESTABLISHED", p.Name)
	}
	// Healthy traffic does not wake the watcher.
	for i := range clients {
		_, err := servers[i].Write([]byte("hello"))
		require.NoError(t, err)
	}
	time.Sleep(10 * time.Millisecond)
	assert.Empty(t, probed(tr))

	require.NoError(t, servers[7].Close())
	var got map[uint64]sock.Probe
	deadline := time.Now().Add(2 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
		got = probed(tr)
	}
	require.Len(t, got, 1)
	p, ok := got[idOf(clients[7])]
	require.True(t, ok)
	assert.Equal(t, sock.PeerClosed, p.State)
	assert.Equal(t, "CLOSE_WAIT", p.Name)
	assert.Empty(t, probed(tr), "an edge-triggered event is harvested once")
}

// A reset arrives as EPOLLHUP|EPOLLERR and is reported as a peer close.
func TestEpollSeesReset(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	epollOf(t, tr)
	_, server := dialPair(t, tr)
	require.NoError(t, server.(*net.TCPConn).SetLinger(0))
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Equal(t, "CLOSE", log.Leaks()[0].SocketState)
}

func hasLeak(log *leakLog, id uint64, reason Reason) bool {
	for _, l := range log.Leaks() {
		if l.ID == id && l.Reason == reason {
			return true
		}
	}
	return false
}

// When a wrapper is collected, its descriptor may already be closed and
// its number reused by another tracked socket; the cleanup must not remove
// that socket's registration.
func TestEpollCollectedDoesNotUnregisterReusedFD(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	e := epollOf(t, tr)
	a, b, sb := reusedDescriptor(t, tr, true)
	ra := a.(trackedConn).tracked()
	tr.Poll() // registers b
	e.mu.Lock()
	require.Equal(t, watchRegistered, ra.watch)
	require.Equal(t, watchRegistered, b.(trackedConn).tracked().watch)
	e.mu.Unlock()
	// Now the runtime reports a's wrapper collected.
	ra.cleanup.Stop()
	collectedCleanup(ra)
	e.mu.Lock()
	_, stillA := e.recs[ra.id]
	e.mu.Unlock()
	assert.False(t, stillA)

	require.NoError(t, sb.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return hasLeak(log, idOf(b), ReasonPeerClosed) }),
		"b lost its registration: a's cleanup removed it")
	assert.True(t, hasLeak(log, ra.id, ReasonCollected))
	runtime.KeepAlive(a)
}

// Closing the wrapper after the program closed the socket under it, its
// number since reused, must not unregister the new socket either.
func TestEpollCloseAfterRawCloseKeepsReusedFD(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	epollOf(t, tr)
	a, b, sb := reusedDescriptor(t, tr, true)
	tr.Poll() // registers b
	require.Equal(t, watchRegistered, b.(trackedConn).tracked().watch)
	a.Close() // net.ErrClosed from the raw conn; the record is released
	require.NoError(t, sb.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Equal(t, idOf(b), log.Leaks()[0].ID)
}

// The same socket wrapped twice by one tracker cannot be registered twice;
// the second record is probed on every tick instead, and still detected.
func TestEpollRegistrationFailureFallsBackToSweep(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	e := epollOf(t, tr)
	client, server := dialPair(t, tr)
	again := tr.WrapConn(Unwrap(client))
	tr.Poll()
	// Pending sockets register in map order: either record may be first.
	e.mu.Lock()
	first, second := client.(trackedConn).tracked(), again.(trackedConn).tracked()
	if first.watch != watchRegistered {
		first, second = second, first
	}
	assert.Equal(t, watchRegistered, first.watch)
	assert.Equal(t, watchEveryTick, second.watch)
	assert.Contains(t, e.every, second.id)
	e.mu.Unlock()
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 2 }))
	assert.True(t, hasLeak(log, idOf(client), ReasonPeerClosed))
	assert.True(t, hasLeak(log, idOf(again), ReasonPeerClosed))
	require.NoError(t, again.Close())
	assert.ErrorIs(t, client.Close(), net.ErrClosed)
	e.mu.Lock()
	assert.Empty(t, e.recs)
	assert.Empty(t, e.every)
	e.mu.Unlock()
}

// A full sweep catches a peer close that the watcher did not report.
func TestEpollFullSweepCatchesMissed(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(3))
	e := epollOf(t, tr)
	client, server := dialPair(t, tr)
	r := client.(trackedConn).tracked()
	tr.Poll() // registers it
	// Make the watcher miss it.
	require.NoError(t, unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, int(r.sock.FD), nil))
	require.NoError(t, server.Close())
	time.Sleep(20 * time.Millisecond)
	e.ticks = 0
	tr.Poll()
	tr.Poll()
	assert.Empty(t, log.Leaks(), "ticks 1 and 2 only harvest")
	tr.Poll() // tick 3 is a full sweep
	assert.Equal(t, StatePeerClosed, State(r.state.Load()), "tick 3 is a full sweep")
	tr.Poll() // judged after the (zero) grace period
	require.Len(t, log.Leaks(), 1)
	assert.Equal(t, "CLOSE_WAIT", log.Leaks()[0].SocketState)
}

// A unix socket whose peer wrote and then closed: the peek cannot see the
// end of stream until the data is read, and the edge-triggered event does
// not repeat, so the socket stays on the every-tick list until confirmed.
func TestEpollUnixRecheckBehindUnreadData(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0), WithGracePeriod(0))
	e := epollOf(t, tr)
	c, s := unixPair(t, tr)
	_, err := s.Write([]byte("unread"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	time.Sleep(10 * time.Millisecond)
	tr.Poll()
	tr.Poll()
	assert.Empty(t, log.Leaks(), "the peek is blind behind unread data")
	e.mu.Lock()
	assert.Contains(t, e.every, idOf(c))
	e.mu.Unlock()
	// Read the data without the wrapper, so the program is not seen to read EOF.
	_, err = io.ReadFull(Unwrap(c), make([]byte, 6))
	require.NoError(t, err)
	c.(trackedConn).tracked().lastIO.Store(0)
	tr.Poll()
	tr.Poll()
	require.Len(t, log.Leaks(), 1)
	assert.Equal(t, "PEER_CLOSED", log.Leaks()[0].SocketState)
	e.mu.Lock()
	assert.Empty(t, e.every)
	e.mu.Unlock()
}

// Poll keeps working after Close: the engine then probes every socket.
func TestEpollAfterCloseSweeps(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	_, server := dialPair(t, tr)
	require.NoError(t, tr.Close())
	_, server2 := dialPair(t, tr) // watched after close
	require.NoError(t, server.Close())
	require.NoError(t, server2.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 2 }))
}

// The sweep engine stays available for comparison and as the fallback.
func TestSweepOnlyOption(t *testing.T) {
	tr, log := newTestTracker(t, withSweepOnly())
	_, ok := tr.engine.(*sweepEngine)
	require.True(t, ok)
	_, server := dialPair(t, tr)
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
}

// A connection closed before the next tick is never registered: it costs
// no system call in the engine. One that lives on is registered by the
// poller, and a peer close that came before is reported at once.
func TestEpollRegistersOnTheNextTick(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	e := epollOf(t, tr)
	short, _ := dialPair(t, tr)
	rs := short.(trackedConn).tracked()
	assert.Equal(t, idOf(short), tr.snapshotOf(idOf(short)).ID, "listed as open before any poll")
	require.NoError(t, short.Close())
	assert.Equal(t, claimDropped, rs.claim.Load(), "closed before the engine saw it")
	tr.Poll()
	e.mu.Lock()
	assert.Empty(t, e.recs)
	e.mu.Unlock()
	assert.Equal(t, watchNone, rs.watch)
	assert.Zero(t, registrySize(tr), "the poll dropped the closed record")

	long, server := dialPair(t, tr)
	require.NoError(t, server.Close())
	time.Sleep(10 * time.Millisecond) // the FIN has arrived before registration
	tr.Poll()
	e.mu.Lock()
	assert.Equal(t, watchRegistered, long.(trackedConn).tracked().watch)
	e.mu.Unlock()
	assert.Equal(t, StatePeerClosed, State(long.(trackedConn).tracked().state.Load()),
		"registration reports a peer close that came before it")
	healthy, _ := dialPair(t, tr)
	tr.Poll()
	assert.Equal(t, "ESTABLISHED", tr.snapshotOf(idOf(healthy)).SocketState,
		"a socket is probed once when registered, so reports know its state")
	tr.Poll()
	require.Len(t, log.Leaks(), 1)
}

// A socket closed under its wrapper before registration, its number
// reused, is not registered under the old record's id. A unix socket's
// cookie is known from the moment it was wrapped: registration checks it
// again, it does not trust it.
func TestEpollDoesNotRegisterReusedFD(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			tr, _ := newTestTracker(t, WithFullSweepEvery(0))
			e := epollOf(t, tr)
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = t.TempDir() + "/s"
			}
			ln, err := net.Listen(network, addr)
			require.NoError(t, err)
			defer ln.Close()
			a, err := tr.WrapDialer(nil)(t.Context(), network, ln.Addr().String())
			require.NoError(t, err)
			defer a.Close()
			sa, err := ln.Accept()
			require.NoError(t, err)
			defer sa.Close()
			ra := a.(trackedConn).tracked()
			require.NoError(t, Unwrap(a).Close())
			other, err := net.Dial(network, ln.Addr().String())
			require.NoError(t, err)
			defer other.Close()
			if socketOf(other, network).FD != ra.sock.FD {
				t.Skip("the descriptor number was not reused")
			}
			tr.Poll()
			e.mu.Lock()
			assert.Equal(t, watchLost, ra.watch, "a's number now names another socket")
			e.mu.Unlock()
		})
	}
}

// size is how many records the engine holds.
func (e *epollEngine) size() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.recs) + len(e.every)
}

func (t *Tracker) snapshotOf(id uint64) Resource {
	for _, r := range t.Open() {
		if r.ID == id {
			return r
		}
	}
	return Resource{}
}

// reusedDescriptor dials a tracked conn a, optionally lets a poll register
// it, closes its socket under the wrapper (as the runtime does for a dropped
// wrapper; the record stays open), then dials a tracked conn b that takes
// the same descriptor number. It skips the test when the kernel picks
// another number. sb is b's server side.
func reusedDescriptor(t *testing.T, tr *Tracker, registerA bool) (a, b, sb net.Conn) {
	t.Helper()
	ln := listen(t)
	a, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	sa, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { sa.Close() })
	if registerA {
		tr.Poll()
	}
	require.NoError(t, Unwrap(a).Close())
	b, err = tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	sb, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	if b.(trackedConn).tracked().sock.FD != a.(trackedConn).tracked().sock.FD {
		t.Skip("the descriptor number was not reused")
	}
	return a, b, sb
}

// The cookie is read by the poller, not at dial time. If the descriptor
// number was reused before that (the socket closed under its wrapper), the
// addresses tell the new socket from the old one: the old record is never
// registered under the new socket, nor probed by a full sweep, which would
// see the new socket's state.
func TestIdentifyRejectsReusedDescriptorBeforeRegistration(t *testing.T) {
	for _, fullEvery := range []int{0, 1} {
		t.Run(fmt.Sprintf("full sweep every %d", fullEvery), func(t *testing.T) {
			identifyRejectsReusedDescriptor(t, fullEvery)
		})
	}
}

func identifyRejectsReusedDescriptor(t *testing.T, fullEvery int) {
	tr, log := newTestTracker(t, WithFullSweepEvery(fullEvery))
	e := epollOf(t, tr)
	a, b, sb := reusedDescriptor(t, tr, false) // a closed under its wrapper, never registered
	ra, rb := a.(trackedConn).tracked(), b.(trackedConn).tracked()
	assert.Zero(t, ra.cookie.Load(), "no cookie system call on the dial path")
	tr.Poll() // registers both, or tries to
	e.mu.Lock()
	assert.Equal(t, watchLost, ra.watch, "a's number now names b's socket")
	assert.Equal(t, watchRegistered, rb.watch)
	e.mu.Unlock()
	assert.Zero(t, ra.cookie.Load())
	assert.NotZero(t, rb.cookie.Load())

	require.NoError(t, sb.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	for range 3 {
		tr.Poll() // full sweeps, when on
	}
	require.Len(t, log.Leaks(), 1)
	assert.Equal(t, rb.id, log.Leaks()[0].ID, "b's leak is b's, never a's")
	a.Close()
}
