package tracker

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A connection held by a resource idle in its pool, whose peer closes, is
// reported at once with ReasonIdleInPool at Info level, though the grace
// period is long; the same connection in use waits for the grace and is a
// leak.
func TestIdleInPoolIsReportedAtInfoWithoutGrace(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour), WithLogger(logger))
	client, server := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	defer pooled.Close()
	pooled.Hold(client)
	pooled.SetIdle(true)
	require.NoError(t, server.Close())

	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 0 }),
		"the idle pooled connection's closed peer was never reported")
	l := log.Leaks()[0]
	assert.Equal(t, ReasonIdleInPool, l.Reason)
	assert.Equal(t, KindConn, l.Kind)
	require.NotNil(t, l.HeldBy)
	assert.True(t, l.HeldBy.Idle)
	assert.Contains(t, l.String(), "idle in its pool")
	assert.Contains(t, logs.String(), "level=INFO")
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.NotContains(t, logs.String(), "level=ERROR")

	leaks := tr.Leaks()
	require.Len(t, leaks, 1)
	assert.Equal(t, ReasonIdleInPool, leaks[0].Reason)
}

// Marked in use again, the holder's connection is judged as any other: a
// closed peer is a leak once the grace has passed, not before.
func TestInUseAgainIsJudgedWithGrace(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Second))
	client, server := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	defer pooled.Close()
	pooled.Hold(client)
	pooled.SetIdle(true)
	pooled.SetIdle(false)
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return tr.PeerClosed(client) }))
	tr.Poll()
	assert.Empty(t, log.Leaks(), "reported before the grace period ended")
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) > 0 }))
	assert.Equal(t, ReasonPeerClosed, log.Leaks()[0].Reason)
}

// A Handle's Close ends its idle mark with its links, and a connection
// held by nothing is never idle: SetIdle concerns what a holder holds.
func TestIdleMarkEndsWithTheHandle(t *testing.T) {
	tr, _ := newTestTracker(t)
	client, _ := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	pooled.Hold(client)
	pooled.SetIdle(true)
	res := connOpen(t, tr)
	require.NotNil(t, res.HeldBy)
	assert.True(t, res.HeldBy.Idle)
	pooled.Close()
	res = connOpen(t, tr)
	assert.Nil(t, res.HeldBy)
	assert.False(t, res.Idle)
	assert.False(t, tr.isIdle(pooled.rec))
	pooled.SetIdle(true) // closed: ignored
	assert.False(t, tr.isIdle(pooled.rec))
	var nilHandle *Handle
	nilHandle.SetIdle(true)
}

// A dial made under a context carrying a hook hands the hook the tracked
// connection, the one Hold takes; a context without one calls nothing.
func TestContextWithDialHook(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := listen(t)
	dial := tr.WrapDialer(nil)
	var got []net.Conn
	ctx := ContextWithDialHook(t.Context(), func(c net.Conn) { got = append(got, c) })
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // a derived context keeps the hook
	defer cancel()
	c, err := dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Len(t, got, 1)
	assert.Same(t, c, got[0])
	assert.Equal(t, idOf(c), tr.trackedUnder(got[0]).id)

	c2, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	assert.Len(t, got, 1)
	assert.Equal(t, t.Context(), ContextWithDialHook(t.Context(), nil))
}

// PeerClosed probes the socket now, without waiting for a poll, and is
// false for a healthy, a closed or an untracked connection.
func TestPeerClosedProbesNow(t *testing.T) {
	tr, _ := newTestTracker(t)
	client, server := dialPair(t, tr)
	assert.False(t, tr.PeerClosed(client))
	require.NoError(t, server.Close())
	deadline := time.Now().Add(2 * time.Second)
	for !tr.PeerClosed(client) {
		require.True(t, time.Now().Before(deadline), "the peer's close was never seen")
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, StatePeerClosed, connOpen(t, tr).State)
	require.NoError(t, client.Close())
	assert.False(t, tr.PeerClosed(client))

	raw, _ := net.Pipe()
	defer raw.Close()
	assert.False(t, tr.PeerClosed(raw))
	assert.False(t, tr.PeerClosed(nil))
	assert.True(t, strings.HasPrefix(ReasonIdleInPool.String(), "peer closed"))
}
