package tracker

import (
	"sync"

	"github.com/connleak/connleak/internal/sock"
)

// engine is how the tracker learns that a peer has closed. Implementations
// differ by platform and cost; the tracker only needs these four calls.
type engine interface {
	// watch starts watching the socket of r. The poller calls it, under the
	// tracker's poll lock, on the first poll after r was wrapped; it must
	// skip r unless r.claimForEngine, taken under the engine's lock, succeeds.
	watch(r *record)
	// unwatch stops watching r; it is called before r's descriptor is closed.
	// When r.dropBeforeEngine succeeds, watch never saw r: nothing to undo.
	unwatch(r *record)
	// poll probes the watched sockets and calls found with what it learned.
	// It runs under the tracker's poll lock.
	poll(found func(r *record, p sock.Probe))
	close()
}

// sweepEngine probes every watched socket on every tick: one getsockopt
// (Linux) or recv(MSG_PEEK) (other Unix systems) per connection.
type sweepEngine struct {
	mu   sync.Mutex
	recs map[uint64]*record
	buf  []*record // reused between ticks; touched only by poll
}

func newSweepEngine() *sweepEngine {
	return &sweepEngine{recs: make(map[uint64]*record)}
}

func (e *sweepEngine) watch(r *record) {
	e.mu.Lock()
	if r.claimForEngine() {
		e.recs[r.id] = r
	}
	e.mu.Unlock()
}

func (e *sweepEngine) unwatch(r *record) {
	if r.dropBeforeEngine() {
		return
	}
	e.mu.Lock()
	delete(e.recs, r.id)
	e.mu.Unlock()
}

func (e *sweepEngine) poll(found func(*record, sock.Probe)) {
	e.mu.Lock()
	e.buf = e.buf[:0]
	for _, r := range e.recs {
		e.buf = append(e.buf, r)
	}
	e.mu.Unlock()
	for i, r := range e.buf {
		e.buf[i] = nil
		if !r.identify() {
			continue // the descriptor is no longer r's socket
		}
		p := sock.ProbeSocket(r.handle())
		// A Close that raced with the probe may have freed the descriptor
		// number for another socket: trust nothing about a closed record.
		if State(r.state.Load()) == StateClosed {
			continue
		}
		found(r, p)
	}
}

func (e *sweepEngine) close() {}

func (e *sweepEngine) compact() {
	e.mu.Lock()
	e.recs = emptied(e.recs)
	e.mu.Unlock()
}
