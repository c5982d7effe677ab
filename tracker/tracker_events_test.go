package tracker

import (
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// eventTape records every event a tracker delivers, in delivery order.
type eventTape struct {
	mu     sync.Mutex
	events []tapedEvent
	fresh  map[uint64]bool
}

type tapedEvent struct {
	resolved bool
	leak     Leak
}

func (e *eventTape) onLeak(l Leak)     { e.add(tapedEvent{false, l}) }
func (e *eventTape) onResolved(l Leak) { e.add(tapedEvent{true, l}) }

func (e *eventTape) add(ev tapedEvent) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	if !ev.resolved {
		e.fresh[ev.leak.ID] = true
	}
	e.mu.Unlock()
}

// reported says whether the resource with this id has been reported leaked.
func (e *eventTape) reported(id uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fresh[id]
}

// TestEventsUnderChurn opens resources from several goroutines, lets them be
// judged leaked, then closes or drops them while a 1 ms poller and another
// goroutine calling Poll run, and checks every event delivered: a leak is reported once and
// resolved at most once, after its report, and a resolution carries the
// close time and, for a Close, the close site. A Close or a collection
// landing in the middle of a poll tick must not make the tick see a closed
// record whose close is only half recorded.
func TestEventsUnderChurn(t *testing.T) {
	const held Kind = "held"
	tape := &eventTape{fresh: make(map[uint64]bool)}
	tr := New(WithPollInterval(time.Millisecond), WithGracePeriod(0), WithLogger(nil),
		WithHoldLimit(held, time.Microsecond),
		WithOnLeak(tape.onLeak), WithOnResolved(tape.onResolved))
	t.Cleanup(func() { tr.Close() })

	budget := 1500 * time.Millisecond
	if testing.Short() {
		budget = 300 * time.Millisecond
	}
	deadline := time.Now().Add(budget)
	// Few goroutines and small batches: with more of either, a machine with
	// two CPUs less often runs a poll beside a Close, and races go unseen.
	const (
		handleWorkers, handleBatches, handleBatch = 3, 5000, 16
		connWorkers, connBatches, connBatch       = 1, 2000, 8
	)

	var closedMu sync.Mutex
	closedByClose := make(map[uint64]bool) // ids the test closed with Close
	noteClosed := func(ids []uint64) {
		closedMu.Lock()
		for _, id := range ids {
			closedByClose[id] = true
		}
		closedMu.Unlock()
	}
	// awaitReport mostly waits until the last of a batch has been reported,
	// so that the batch's Closes land in the ticks that follow a report; one
	// time in eight it only yields, and the batch is closed while it is
	// judged.
	awaitReport := func(last uint64) {
		if rand.IntN(8) == 0 {
			runtime.Gosched()
			return
		}
		until := time.Now().Add(20 * time.Millisecond)
		for !tape.reported(last) && time.Now().Before(until) {
			time.Sleep(20 * time.Microsecond)
		}
	}

	var workers, background sync.WaitGroup
	stop := make(chan struct{})
	var handles, conns atomic.Int64

	// Handles of a kind with a hold limit: reported on the first tick that
	// sees them, then closed or dropped.
	for range handleWorkers {
		workers.Go(func() {
			hs := make([]*Handle, handleBatch)
			ids := make([]uint64, 0, handleBatch)
			for range handleBatches {
				if time.Now().After(deadline) {
					return
				}
				for i := range hs {
					hs[i] = tr.Track(held)
				}
				awaitReport(hs[len(hs)-1].ID())
				ids = ids[:0]
				for i, h := range hs {
					if i%4 != 3 {
						ids = append(ids, h.ID())
					}
				}
				noteClosed(ids)
				for i, h := range hs {
					hs[i] = nil // every fourth is dropped, for the collector
					if i%4 != 3 {
						h.Close()
					}
				}
				handles.Add(int64(handleBatch))
			}
		})
	}

	// Loopback connections whose peer closes: reported peer-closed once the
	// probe or a Read sees the close, then closed or dropped.
	for range connWorkers {
		ln := listen(t)
		addr := ln.Addr().String()
		dial := tr.WrapDialer(nil)
		workers.Go(func() {
			cs := make([]net.Conn, connBatch)
			ids := make([]uint64, 0, connBatch)
			var buf [1]byte
			for range connBatches {
				if time.Now().After(deadline) {
					return
				}
				for i := range cs {
					c, err := dial(t.Context(), "tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					s, err := ln.Accept()
					if err != nil {
						t.Error(err)
						return
					}
					s.Close()
					cs[i] = c
				}
				for i, c := range cs {
					if i%2 == 0 {
						c.SetReadDeadline(time.Now().Add(time.Second))
						c.Read(buf[:]) // EOF: the program learns of the close itself
					}
				}
				awaitReport(cs[len(cs)-1].(trackedConn).tracked().id)
				ids = ids[:0]
				for i, c := range cs {
					if i%4 != 3 {
						ids = append(ids, c.(trackedConn).tracked().id)
					}
				}
				noteClosed(ids)
				for i, c := range cs {
					cs[i] = nil
					if i%4 != 3 {
						c.Close()
					}
				}
				conns.Add(int64(connBatch))
			}
		})
	}

	// Polls besides the poller's own, and collections for the dropped.
	background.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				tr.Poll()
			}
		}
	})
	background.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.GC()
			}
		}
	})

	workers.Wait()
	close(stop)
	background.Wait()

	// Every dropped resource collected, its report delivered.
	settled := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		tr.Poll()
		tr.pendMu.Lock()
		pending := len(tr.pending)
		tr.pendMu.Unlock()
		tr.susMu.Lock()
		suspects := len(tr.suspects)
		tr.susMu.Unlock()
		if len(tr.all()) == 0 && pending == 0 && suspects == 0 {
			break
		}
		require.True(t, time.Now().Before(settled), "records still held: %d", len(tr.all()))
		time.Sleep(time.Millisecond)
	}
	tr.Close()

	tape.mu.Lock()
	events := tape.events
	tape.mu.Unlock()
	closedMu.Lock()
	defer closedMu.Unlock()

	var (
		freshN, resolvedN                          int
		dupFresh, dupResolved, resolvedBeforeLeak  int
		zeroClosedAt, closedBeforeOpen, badFor     int
		noCloseStack, zeroPeerClosedAt, unresolved int
	)
	fresh := make(map[uint64]int)
	collectedLeak := make(map[uint64]bool)
	resolved := make(map[uint64]int)
	var examples []string
	example := func(what string, l Leak) {
		if len(examples) < 5 {
			examples = append(examples, fmt.Sprintf("%s: id %d %s %s, opened %v, closed %v, for %v",
				what, l.ID, l.Kind, l.Reason, l.OpenedAt.Format(time.StampMicro),
				l.ClosedAt.Format(time.StampMicro), l.For))
		}
	}
	for _, ev := range events {
		l := ev.leak
		if !ev.resolved {
			freshN++
			collectedLeak[l.ID] = l.Reason == ReasonCollected
			if fresh[l.ID]++; fresh[l.ID] > 1 {
				dupFresh++
				example("second report", l)
			}
			if l.Reason == ReasonPeerClosed && l.PeerClosedAt.IsZero() {
				zeroPeerClosedAt++
				example("peer-closed report without PeerClosedAt", l)
			}
			continue
		}
		resolvedN++
		if resolved[l.ID]++; resolved[l.ID] > 1 {
			dupResolved++
			example("second resolution", l)
		}
		if fresh[l.ID] == 0 {
			resolvedBeforeLeak++
			example("resolved before any report", l)
		}
		switch {
		case l.ClosedAt.IsZero():
			zeroClosedAt++
			example("resolved without ClosedAt", l)
		case l.ClosedAt.Before(l.OpenedAt):
			closedBeforeOpen++
			example("closed before opened", l)
		}
		// A leak lasts from its open or its peer's close until its close.
		if l.For < 0 || !l.ClosedAt.IsZero() && l.For > l.ClosedAt.Sub(l.OpenedAt) {
			badFor++
			example("For out of range", l)
		}
		if closedByClose[l.ID] && l.CloseStack.IsZero() {
			noCloseStack++
			example("closed with Close, no CloseStack", l)
		}
	}

	// Everything was closed or collected and the tracker has settled: every
	// leak reported while open was resolved. (A resource reported as
	// collected without Close is gone: nothing resolves it.)
	for id := range fresh {
		if resolved[id] == 0 && !collectedLeak[id] {
			unresolved++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("reported, never resolved: id %d", id))
			}
		}
	}

	t.Logf("%d handles and %d conns; %d leak events, %d resolved", handles.Load(), conns.Load(), freshN, resolvedN)
	bad := dupFresh + dupResolved + resolvedBeforeLeak + zeroClosedAt + closedBeforeOpen + badFor +
		noCloseStack + zeroPeerClosedAt + unresolved
	if bad > 0 {
		t.Errorf("malformed events among %d leak and %d resolved events:\n"+
			"  duplicate leak events:            %d\n"+
			"  duplicate resolved events:        %d\n"+
			"  resolved before any report:       %d\n"+
			"  resolved with zero ClosedAt:      %d\n"+
			"  ClosedAt before OpenedAt:         %d\n"+
			"  resolved with For out of range:   %d\n"+
			"  closed with Close, no CloseStack: %d\n"+
			"  peer-closed, zero PeerClosedAt:   %d\n"+
			"  reported, never resolved:         %d\n"+
			"examples:\n  %s",
			freshN, resolvedN, dupFresh, dupResolved, resolvedBeforeLeak, zeroClosedAt,
			closedBeforeOpen, badFor, noCloseStack, zeroPeerClosedAt, unresolved, strings.Join(examples, "\n  "))
	}
	require.NotZero(t, resolvedN, "nothing was resolved: the test exercised nothing")
}
