package tracker

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Handle dropped without Close is reported collected too.
func TestHandleCollected(t *testing.T) {
	tr, log := newTestTracker(t)
	func() { _ = tr.Track("body", TrackLabel("GET /orders")) }()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { runtime.GC(); return len(log.Leaks()) > 0 }))
	l := log.Leaks()[0]
	assert.Equal(t, Kind("body"), l.Kind)
	assert.Equal(t, ReasonCollected, l.Reason)
	assert.Equal(t, "GET /orders", l.Label)
}

// Handles of a kind with a hold limit are reported once held past it.
func TestHoldLimit(t *testing.T) {
	tr, log := newTestTracker(t, WithHoldLimit("tx", 30*time.Millisecond))
	h := tr.Track("tx", TrackAddrs("tcp", "", "127.0.0.1:5432"))
	other := tr.Track("rows") // no limit for this kind
	defer other.Close()
	tr.Poll()
	assert.Empty(t, log.Leaks())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	l := log.Leaks()[0]
	assert.Equal(t, ReasonHeldTooLong, l.Reason)
	assert.Equal(t, h.ID(), l.ID)
	assert.GreaterOrEqual(t, l.For, 30*time.Millisecond)
	h.Close()
	h.Close() // idempotent
	tr.Poll()
	assert.Len(t, log.Resolved(), 1)
}
