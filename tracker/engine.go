package tracker

import (
	"net"
	"sync"
	"syscall"
)

// engine is how the tracker learns that a peer has closed. Implementations
// differ by platform and cost; the tracker only needs these four calls.
type engine interface {
	// watch starts watching the socket of r.
	watch(r *record)
	// unwatch stops watching r; it is called before r's descriptor is closed.
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
	e.recs[r.id] = r
	e.mu.Unlock()
}

func (e *sweepEngine) unwatch(r *record) {
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
		p := probeSocket(r.sock)
		// A Close that raced with the probe may have freed the descriptor
		// number for another socket: trust nothing about a closed record.
		if State(r.state.Load()) == StateClosed {
			continue
		}
		found(r, p)
	}
}

func (e *sweepEngine) close() {}

// socketOf finds the descriptor under c without keeping c reachable and
// without dup'ing it (File would).
func socketOf(c net.Conn, network string) sockHandle {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return sockHandle{}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return sockHandle{}
	}
	var h sockHandle
	if raw.Control(func(fd uintptr) { h.fd, h.ok = fd, true }) != nil {
		return sockHandle{}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		h.tcp, h.stream = true, true
	case "unix":
		h.stream = true
	}
	if h.ok && h.stream {
		h.cookie = socketCookie(h.fd)
	}
	return h
}
