package tracker

import (
	"bytes"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitCloseWait waits, without a poll, until the kernel says c's peer has
// closed: the loopback FIN is processed asynchronously.
func waitCloseWait(t *testing.T, c net.Conn) {
	t.Helper()
	h := socketOf(Unwrap(c), "tcp")
	deadline := time.Now().Add(2 * time.Second)
	for sock.ProbeSocket(h).State < sock.PeerClosed {
		require.True(t, time.Now().Before(deadline), "the peer's FIN never arrived")
		time.Sleep(2 * time.Millisecond)
	}
}

// A pool closing an idle connection whose peer closed it, before any poll
// saw that, has it reported with ReasonIdleInPool at Info by the next poll,
// holder and all; once, however many polls follow.
func TestIdleConnClosedBeforeAPollIsReported(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour), WithLogger(logger))
	client, server := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	pooled.Hold(client)
	pooled.SetIdle(true)
	require.NoError(t, server.Close())
	waitCloseWait(t, client)
	require.NoError(t, client.Close()) // the pool evicts it
	pooled.Close()
	assert.Empty(t, log.Leaks(), "reported on the closing goroutine")
	tr.Poll()
	tr.Poll()
	leaks := log.Leaks()
	require.Len(t, leaks, 1)
	l := leaks[0]
	assert.Equal(t, ReasonIdleInPool, l.Reason)
	assert.Equal(t, KindConn, l.Kind)
	assert.Equal(t, StatePeerClosed, l.State)
	assert.Equal(t, "CLOSE_WAIT", l.SocketState)
	require.NotNil(t, l.HeldBy)
	assert.Equal(t, pooled.ID(), l.HeldBy.ID)
	assert.True(t, l.HeldBy.Idle)
	assert.Contains(t, logs.String(), "level=INFO")
	assert.NotContains(t, logs.String(), "level=WARN")
	assert.Empty(t, log.Resolved())
}

// A connection a poll already reported idle in its pool is not reported
// again when the pool closes it: its close resolves the report.
func TestIdleConnReportedThenClosedIsResolved(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour))
	client, server := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	defer pooled.Close()
	pooled.Hold(client)
	pooled.SetIdle(true)
	require.NoError(t, server.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 0 }))
	require.NoError(t, client.Close())
	tr.Poll()
	tr.Poll()
	assert.Len(t, log.Leaks(), 1)
	assert.Len(t, log.Resolved(), 1)
}

// Closing a connection in use, or a healthy idle one, reports nothing.
func TestClosingInUseOrHealthyIdleReportsNothing(t *testing.T) {
	tr, log := newTestTracker(t, WithGracePeriod(time.Hour))
	inUse, inUsePeer := dialPair(t, tr)
	holder := tr.Track("sql.checkout")
	defer holder.Close()
	holder.Hold(inUse)
	require.NoError(t, inUsePeer.Close())
	waitCloseWait(t, inUse)
	require.NoError(t, inUse.Close())

	healthy, _ := dialPair(t, tr)
	pooled := tr.Track("sql.conn")
	defer pooled.Close()
	pooled.Hold(healthy)
	pooled.SetIdle(true)
	require.NoError(t, healthy.Close())
	tr.Poll()
	assert.Empty(t, log.Leaks())
}
