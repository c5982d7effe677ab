package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A resource's own hold limit judges it, and only it: another of its kind
// without one is never judged by age, and one closed after its report is
// resolved with the line that closed it.
func TestTrackHoldLimit(t *testing.T) {
	tr, log := newTestTracker(t)
	limited := tr.Track("sql.rows", TrackHoldLimit(20*time.Millisecond))
	unlimited := tr.Track("sql.rows")
	defer unlimited.Close()
	ignored := tr.Track("sql.rows", TrackHoldLimit(-time.Second))
	defer ignored.Close()
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 0 }))
	time.Sleep(30 * time.Millisecond)
	tr.Poll()
	leaks := log.Leaks()
	require.Len(t, leaks, 1)
	assert.Equal(t, limited.ID(), leaks[0].ID)
	assert.Equal(t, ReasonHeldTooLong, leaks[0].Reason)
	assert.GreaterOrEqual(t, leaks[0].For, 20*time.Millisecond)

	limited.Close()
	tr.Poll()
	resolved := log.Resolved()
	require.Len(t, resolved, 1)
	assert.Equal(t, "TestTrackHoldLimit", resolved[0].CloseStack.Site().Function[len("github.com/connleak/connleak/tracker."):])
}

// A resource's own limit takes the place of its kind's.
func TestTrackHoldLimitOverridesTheKinds(t *testing.T) {
	tr, log := newTestTracker(t, WithHoldLimit("sql.tx", time.Hour))
	h := tr.Track("sql.tx", TrackHoldLimit(time.Millisecond))
	defer h.Close()
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 0 }))
	assert.Equal(t, ReasonHeldTooLong, log.Leaks()[0].Reason)
}
