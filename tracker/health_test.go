package tracker

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultThresholds(t *testing.T) {
	th := DefaultThresholds()
	assert.Equal(t, 100, th.CloseWaitWarning)
	assert.Equal(t, 0.5, th.CloseWaitCriticalFraction)
	assert.Equal(t, 5*time.Minute, th.CloseWaitAgeWarning)
	assert.Equal(t, 30*time.Minute, th.CloseWaitAgeCritical)
	assert.Error(t, Validate(WithThresholds(Thresholds{CloseWaitCriticalFraction: 1.5})))
	assert.Error(t, Validate(WithThresholds(Thresholds{CloseWaitWarning: -1})))
	assert.NoError(t, Validate(WithThresholds(Thresholds{})))
}

// peerClose makes n tracked connections whose peer has closed, and polls
// until the tracker knows.
func peerClose(t *testing.T, tr *Tracker, n int) {
	t.Helper()
	n += tr.Health().CloseWait
	for range n - tr.Health().CloseWait {
		_, server := dialPair(t, tr)
		require.NoError(t, server.Close())
	}
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return tr.Health().CloseWait == n }))
}

func TestHealthCount(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour),
		WithThresholds(Thresholds{CloseWaitWarning: 2}))
	dialPair(t, tr) // healthy: not counted
	assert.Equal(t, Health{FDLimit: sock.SoftFDLimit()}, tr.Health(), "the limit is known even when nothing counts against it")
	peerClose(t, tr, 2)
	h := tr.Health()
	assert.Equal(t, HealthOK, h.Status, "2 is not more than 2")
	assert.Empty(t, h.Reasons)
	peerClose(t, tr, 1)
	h = tr.Health()
	assert.Equal(t, HealthWarning, h.Status)
	require.Len(t, h.Reasons, 1)
	assert.Equal(t, "3 connections in CLOSE_WAIT: more than 2", h.Reasons[0])
	assert.Equal(t, 3, h.CloseWait)
}

func TestHealthFractionOfFDLimit(t *testing.T) {
	if sock.SoftFDLimit() == 0 {
		t.Skip("no descriptor limit on this system")
	}
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour), WithThresholds(Thresholds{
		CloseWaitWarning:          1,
		CloseWaitCriticalFraction: 1.5 / float64(sock.SoftFDLimit()),
	}))
	peerClose(t, tr, 2)
	h := tr.Health()
	assert.Equal(t, HealthCritical, h.Status)
	require.Len(t, h.Reasons, 1, "the critical count replaces the warning count")
	assert.Contains(t, h.Reasons[0], "2 connections in CLOSE_WAIT: more than")
	assert.Contains(t, h.Reasons[0], "of the descriptor limit")
	assert.Equal(t, sock.SoftFDLimit(), h.FDLimit)
}

func TestHealthAge(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour), WithThresholds(Thresholds{
		CloseWaitAgeWarning:  30 * time.Millisecond,
		CloseWaitAgeCritical: time.Hour,
	}))
	peerClose(t, tr, 1)
	time.Sleep(40 * time.Millisecond)
	h := tr.Health()
	assert.Equal(t, HealthWarning, h.Status)
	assert.GreaterOrEqual(t, h.OldestCloseWait, 40*time.Millisecond)
	require.Len(t, h.Reasons, 1)
	assert.Contains(t, h.Reasons[0], "a connection in CLOSE_WAIT for")
}

// levelLog records the level and message of every log record.
type levelLog struct {
	mu   sync.Mutex
	recs []string
}

func (l *levelLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *levelLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	l.mu.Unlock()
	return nil
}
func (l *levelLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levelLog) WithGroup(string) slog.Handler      { return l }
func (l *levelLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// Leak reports are logged at Error while health is critical, and the
// change of status is logged once.
func TestHealthSetsLogLevel(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	h := &levelLog{}
	tr, _ := newTestTracker(t, WithLogger(slog.New(h)), WithGracePeriod(0),
		WithThresholds(Thresholds{CloseWaitWarning: 1, CloseWaitAgeCritical: time.Hour}))
	peerClose(t, tr, 1)
	tr.Poll()
	assert.Equal(t, []string{"WARN connleak: leak"}, h.lines())

	peerClose(t, tr, 1) // 2 is more than the warning count of 1
	tr.Poll()
	lines := h.lines()
	assert.Contains(t, lines, "WARN connleak: health warning")

	tr2, _ := newTestTracker(t, WithLogger(slog.New(h)), WithGracePeriod(0),
		WithThresholds(Thresholds{CloseWaitCriticalFraction: 0.5 / float64(max(sock.SoftFDLimit(), 1))}))
	if sock.SoftFDLimit() == 0 {
		t.Skip("no descriptor limit on this system")
	}
	h.mu.Lock()
	h.recs = nil
	h.mu.Unlock()
	peerClose(t, tr2, 1)
	tr2.Poll()
	lines = h.lines()
	assert.Contains(t, lines, "ERROR connleak: leak")
	assert.Contains(t, lines, "ERROR connleak: health critical")
}

// callingHandler is a log handler that calls back into the tracker, as a
// handler that flushes a report might.
type callingHandler struct {
	slog.Handler
	call func()
}

func (h callingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.call()
	return h.Handler.Handle(ctx, r)
}

// A log handler may Poll and Close its tracker while the health change is
// logged, as a WithOnLeak callback may, without a deadlock.
func TestHealthLogHandlerMayPollAndClose(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	var tr *Tracker
	var calls atomic.Int32
	h := callingHandler{Handler: slog.NewTextHandler(io.Discard, nil), call: func() {
		calls.Add(1)
		tr.Poll()
		tr.Close()
	}}
	tr, _ = newTestTracker(t, WithGracePeriod(time.Hour), WithLogger(slog.New(h)),
		WithThresholds(Thresholds{CloseWaitAgeWarning: time.Nanosecond}))
	_, server := dialPair(t, tr)
	require.NoError(t, server.Close())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for calls.Load() == 0 {
			tr.Poll()
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a Poll from the log handler waited for the poll that runs it")
	}
}
