package tracker

import (
	"net"
	"sync"
	"syscall"
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
	poll(found func(r *record, p sockProbe))
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

func (e *sweepEngine) poll(found func(*record, sockProbe)) {
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
		p := probeSocket(r.handle())
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

// descriptorOf finds the descriptor under x without keeping x reachable and
// without dup'ing it (File would).
func descriptorOf(x any) (fd uintptr, ok bool) {
	var h sockHandle
	if !h.readDescriptor(x) {
		return 0, false
	}
	return h.fd, true
}

// readDescriptor sets h.fd and h.ok from the descriptor under x. The closure
// handed to Control captures only h, which already lives on the heap when h
// is a record's: one allocation fewer on every wrapped connection.
func (h *sockHandle) readDescriptor(x any) bool {
	sc, isSC := x.(syscall.Conn)
	if !isSC {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	err = raw.Control(func(d uintptr) { h.fd, h.ok = d, true })
	return err == nil && h.ok
}

// describe fills the zero h from the socket under c, and leaves it zero (not
// ok) when c has no descriptor. The cookie is not read here: that system call
// would be paid by every connection, most of which close before the poller
// ever looks at them.
func (h *sockHandle) describe(c net.Conn, network string) {
	if !h.readDescriptor(c) {
		*h = sockHandle{}
		return
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		h.tcp, h.stream = true, true
	case "unix":
		h.stream = true
	}
}
