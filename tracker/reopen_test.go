package tracker

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// previousLine is the line of its caller's previous line: the statement under
// test.
func previousLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line - 1
}

// openOfKind returns tr's open resources of kind k.
func openOfKind(tr *Tracker, k Kind) []Resource {
	var out []Resource
	for _, r := range tr.Open() {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// Reopen is a Close and a Track: the new resource has an ID, time and line
// of its own, the old one is gone, and the Handle is the same one.
func TestReopenIsCloseAndTrack(t *testing.T) {
	tr, log := newTestTracker(t)
	h := tr.Track("checkout", TrackLabel("first"))
	first := h.ID()
	time.Sleep(time.Millisecond)
	tr.Poll() // promoted: the registry's map holds it now
	h2 := h.Reopen()
	line := previousLine()
	require.Same(t, h, h2)
	assert.NotEqual(t, first, h.ID())
	open := openOfKind(tr, "checkout")
	require.Len(t, open, 1)
	assert.Equal(t, h.ID(), open[0].ID)
	assert.Equal(t, line, open[0].Site().Line, "%s", open[0].StackReport())
	assert.Empty(t, open[0].Label, "options are the new resource's own")

	// Closed, then reopened while the closed one is still on a young list.
	h.Close()
	assert.Empty(t, openOfKind(tr, "checkout"))
	h = h.Reopen(TrackLabel("third"))
	require.Same(t, h2, h)
	open = openOfKind(tr, "checkout")
	require.Len(t, open, 1)
	assert.Equal(t, "third", open[0].Label)
	for range 3 { // through polls, promoted and not, it is listed once
		h = h.Reopen()
		tr.Poll()
		h.Close()
		h = h.Reopen()
		require.Len(t, openOfKind(tr, "checkout"), 1)
	}
	h.Close()
	tr.Poll()
	assert.Empty(t, tr.Open())
	assert.Empty(t, log.Leaks())
	assert.Zero(t, registrySize(tr)-len(tr.Open()), "closed records linger in the registry after a poll")
}

// A re-armed Handle dropped while open is reported collected, with its
// last open site; one dropped after its Close is not reported.
func TestReopenedHandleCollected(t *testing.T) {
	tr, log := newTestTracker(t)
	var line int
	func() {
		h := tr.Track("checkout")
		h.Close()
		h = h.Reopen() // the watch its Close stopped is set again
		line = previousLine()
		h.Close()
		h.Reopen()
	}()
	func() {
		h := tr.Track("closed")
		h = h.Reopen()
		h.Close()
	}()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { runtime.GC(); return len(log.Leaks()) > 0 }))
	for range 3 {
		runtime.GC()
		tr.Poll()
	}
	leaks := log.Leaks()
	require.Len(t, leaks, 1)
	assert.Equal(t, ReasonCollected, leaks[0].Reason)
	assert.Equal(t, Kind("checkout"), leaks[0].Kind)
	assert.Equal(t, line+3, leaks[0].Site().Line, "%s", leaks[0].StackReport())
}

// A resource reported past its hold limit is resolved when Reopen ends it,
// and the next one is judged from its own open time.
func TestReopenResolvesAndRestartsTheHoldLimit(t *testing.T) {
	tr, log := newTestTracker(t)
	limit := TrackHoldLimit(40 * time.Millisecond)
	h := tr.Track("checkout", limit)
	first := h.ID()
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 0 }))
	h = h.Reopen(limit)
	tr.Poll()
	resolved := log.Resolved()
	require.Len(t, resolved, 1)
	assert.Equal(t, first, resolved[0].ID)
	require.Len(t, log.Leaks(), 1, "the new resource is not held too long yet")
	second := h.ID()
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) > 1 }))
	assert.Equal(t, second, log.Leaks()[1].ID)
	assert.GreaterOrEqual(t, log.Leaks()[1].For, 40*time.Millisecond)

	// Returned in time, reopened and returned again: never reported.
	h.Close()
	tr.Poll()
	for range 5 {
		h = h.Reopen(limit)
		tr.Poll()
		h.Close()
	}
	tr.Poll()
	assert.Len(t, log.Leaks(), 2)
	assert.Len(t, log.Resolved(), 2)
}

// Reopen leaves behind the holder links and idle mark of the resource it
// ends.
func TestReopenDropsLinksAndIdle(t *testing.T) {
	tr, _ := newTestTracker(t)
	c, _ := dialPair(t, tr)
	h := tr.Track("checkout")
	h.Hold(c)
	h.SetIdle(true)
	require.NotNil(t, connOpen(t, tr).HeldBy)
	h = h.Reopen()
	assert.Nil(t, connOpen(t, tr).HeldBy)
	assert.False(t, tr.isIdle(h.rec))
	byConn, byHolder := linkCount(tr)
	assert.Zero(t, byConn+byHolder)
	h.Hold(c)
	assert.Equal(t, h.ID(), connOpen(t, tr).HeldBy.ID)
	h.Close()
}

// Re-arming takes no allocation.
func TestReopenAllocs(t *testing.T) {
	tr, _ := newTestTracker(t)
	h := tr.Track("checkout")
	h = h.Reopen()
	allocs := testing.AllocsPerRun(1000, func() {
		h = h.Reopen()
		h.Close()
	})
	assert.Zero(t, allocs)
	h.Close()
}

// Reopen and Close on many Handles race with polls, Open and Leaks
// without losing or doubling a resource (run with -race).
func TestReopenUnderChurn(t *testing.T) {
	tr, log := newTestTracker(t, WithHoldLimit("limited", time.Millisecond))
	const workers, rounds = 4, 2000
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	pollers.Add(1)
	go func() {
		defer pollers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tr.Poll()
			for _, r := range tr.Open() {
				_ = r.Site()
			}
			tr.Leaks()
		}
	}()
	var wg sync.WaitGroup
	handles := make([]*Handle, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := Kind("plain")
			if w%2 == 1 {
				kind = "limited"
			}
			h := tr.Track(kind)
			for i := range rounds {
				h = h.Reopen()
				if i%3 == 0 {
					h.Close()
				}
			}
			handles[w] = h
		}()
	}
	wg.Wait()
	close(stop)
	pollers.Wait()
	tr.Poll()
	open := tr.Open()
	ids := map[uint64]bool{}
	for _, r := range open {
		assert.False(t, ids[r.ID], "listed twice: %v", r)
		ids[r.ID] = true
	}
	for _, h := range handles {
		assert.True(t, ids[h.ID()], "an open resource is missing")
	}
	assert.Len(t, open, workers)
	for _, h := range handles {
		h.Close()
	}
	tr.Poll()
	tr.Poll()
	assert.Empty(t, tr.Open())
	assert.Zero(t, registrySize(tr))
	leaked := map[uint64]bool{}
	for _, l := range log.Leaks() {
		leaked[l.ID] = true
	}
	for _, l := range log.Resolved() {
		assert.True(t, leaked[l.ID], "resolved without a report: %v", l)
	}
	for id := range leaked {
		found := false
		for _, l := range log.Resolved() {
			found = found || l.ID == id
		}
		assert.True(t, found, "reported %d, never resolved", id)
	}
}

// With WithProfile, a re-armed Handle is in the profile once while open,
// under its new site, and out of it once closed.
func TestReopenWithProfile(t *testing.T) {
	tr, _ := newTestTracker(t, WithProfile())
	before := openProfile().Count()
	h := tr.Track("checkout")
	for range 3 {
		h = h.Reopen()
		assert.Equal(t, before+1, openProfile().Count())
		h.Close()
		assert.Equal(t, before, openProfile().Count())
		h = h.Reopen()
	}
	h.Close()
	assert.Equal(t, before, openProfile().Count())
}

// Reopens of different Handles at once, a server's requests or a client's
// concurrent responses, each re-arm their own Handle: only a poll, Open or
// Leaks in progress makes Reopen fall back to a new one, never another
// Reopen.
func TestConcurrentReopensKeepTheirHandles(t *testing.T) {
	tr, _ := newTestTracker(t) // it polls when told to
	const workers, rounds = 8, 5000
	var wg sync.WaitGroup
	fellBack := make([]int, workers)
	for w := range workers {
		wg.Go(func() {
			h := tr.Track("request")
			for range rounds {
				h.Close()
				if h2 := h.Reopen(); h2 != h {
					fellBack[w]++
					h = h2
				}
			}
			h.Close()
		})
	}
	wg.Wait()
	assert.Equal(t, make([]int, workers), fellBack, "Reopens that fell back to a new Handle, by worker")
	assert.Empty(t, openOfKind(tr, "request"))
}
