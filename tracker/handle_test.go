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

// pcsOfHere returns its own stack, for TrackPCs.
//
//go:noinline
func pcsOfHere() []uintptr {
	pcs := make([]uintptr, 64)
	return pcs[:runtime.Callers(1, pcs)]
}

// TrackPCs gives the open site in place of the caller's stack, cut to the
// stack depth; without program counters the caller's stack stays.
func TestTrackPCs(t *testing.T) {
	tr, _ := newTestTracker(t, WithStackDepth(2))
	pcs := pcsOfHere()
	require.Greater(t, len(pcs), 2)
	h := tr.Track("request", TrackPCs(pcs))
	defer h.Close()
	plain := tr.Track("request", TrackPCs(nil))
	defer plain.Close()
	var given, own Resource
	for _, r := range tr.Open() {
		switch r.ID {
		case h.ID():
			given = r
		case plain.ID():
			own = r
		}
	}
	assert.Equal(t, pcs[:2], given.Stack.PCs(), "cut to the stack depth")
	assert.Equal(t, "github.com/connleak/connleak/tracker.pcsOfHere", given.Site().Function)
	assert.Equal(t, "github.com/connleak/connleak/tracker.TestTrackPCs", own.Site().Function)

	pcs[0] = 0 // the tracker keeps a copy
	assert.Equal(t, "github.com/connleak/connleak/tracker.pcsOfHere", given.Stack.Frames()[0].Function)
}
