//go:build linux

package tracker

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// newEngine picks the Linux engine: an epoll instance of the tracker's own
// that reports peer FINs, or the per-connection sweep when epoll is not
// available (seccomp, exhausted descriptors) or not wanted.
func newEngine(cfg *config) engine {
	if cfg.sweepOnly {
		return newSweepEngine()
	}
	e, err := newEpollEngine(cfg.fullSweepEvery)
	if err != nil {
		return newSweepEngine()
	}
	return e
}

// epollEvents are the events a socket is registered for. EPOLLRDHUP fires
// when the peer's FIN arrives; EPOLLHUP and EPOLLERR, always reported, fire
// on a reset. Without EPOLLIN and EPOLLOUT a healthy connection that moves
// data never shows up in a harvest, and edge triggering reports each change
// once instead of on every tick while the state lasts.
const epollEvents = unix.EPOLLRDHUP | unix.EPOLLET

// harvestBatch is how many events one epoll_wait call returns at most.
const harvestBatch = 128

// epollEngine watches every tracked stream socket through a second epoll
// instance owned by the tracker (the runtime's netpoller has its own), so
// that a tick costs in proportion to the sockets whose peer has closed, not
// to all of them. Each registration carries the record id as its event data,
// never the descriptor number, which may be reused. Candidates are confirmed
// by a probe (TCP_INFO for TCP), and every fullEvery ticks every socket is
// probed, to catch anything the watcher missed.
type epollEngine struct {
	fullEvery uint64

	// life guards epfd: watch, unwatch and poll use it under the read
	// lock, close sets it to -1 under the write lock, so that no call ever
	// reaches a descriptor number that was closed and reused.
	life sync.RWMutex
	epfd int

	mu   sync.Mutex
	recs map[uint64]*record // every watched record, by id
	// every holds records probed on every tick: those epoll could not
	// register, and non-TCP sockets whose peer shut down but whose probe
	// could not confirm it yet (a peek is blind behind unread data, and an
	// edge-triggered event does not come again).
	every    map[uint64]*record
	unpolled map[uint64]bool // ids in every that epoll never registered

	// Owned by poll, which runs under the tracker's poll lock.
	ticks  uint64
	events [harvestBatch]unix.EpollEvent
	ids    []uint64
	cands  []candidate
}

type candidate struct {
	r     *record
	event bool // reported by epoll (rather than a sweep)
}

func newEpollEngine(fullEvery int) (*epollEngine, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if fullEvery < 0 {
		fullEvery = 0
	}
	return &epollEngine{
		fullEvery: uint64(fullEvery),
		epfd:      fd,
		recs:      make(map[uint64]*record),
		every:     make(map[uint64]*record),
		unpolled:  make(map[uint64]bool),
	}, nil
}

func epollData(id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: epollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (e *epollEngine) watch(r *record) {
	e.mu.Lock()
	e.recs[r.id] = r
	e.mu.Unlock()
	ev := epollData(r.id)
	e.life.RLock()
	err := errClosed
	if e.epfd >= 0 {
		err = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, int(r.sock.fd), &ev)
	}
	e.life.RUnlock()
	if err != nil {
		// EEXIST (the same socket wrapped twice by this tracker), ENOSPC
		// (max_user_watches), ENOMEM, or a closed engine: the socket is
		// probed on every tick instead, so nothing goes undetected.
		e.mu.Lock()
		if e.recs[r.id] == r {
			e.every[r.id] = r
			e.unpolled[r.id] = true
		}
		e.mu.Unlock()
	}
}

var errClosed = errors.New("engine closed")

// unwatch runs before the wrapper closes the descriptor, or on the runtime's
// cleanup goroutine when the wrapper was collected.
func (e *epollEngine) unwatch(r *record) {
	e.mu.Lock()
	_, watched := e.recs[r.id]
	registered := watched && !e.unpolled[r.id]
	delete(e.recs, r.id)
	delete(e.every, r.id)
	delete(e.unpolled, r.id)
	e.mu.Unlock()
	if !registered {
		return
	}
	if r.collected.Load() {
		// The runtime may already have closed the descriptor, and its number
		// may now belong to another socket, perhaps one registered here:
		// EPOLL_CTL_DEL by number would remove that one. The kernel drops the
		// registration of a closed socket by itself, and an event still
		// carrying this id is ignored since the id is no longer in recs.
		return
	}
	if r.sock.cookie != 0 && socketCookie(r.sock.fd) != r.sock.cookie {
		// The program closed the socket under the wrapper and the number was
		// reused: same reasoning.
		return
	}
	e.life.RLock()
	if e.epfd >= 0 {
		// ENOENT and EBADF mean the kernel already dropped it.
		_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, int(r.sock.fd), nil)
	}
	e.life.RUnlock()
}

// poll harvests the sockets epoll reported since the last tick, adds those
// probed on every tick (or every socket, when a full sweep is due or the
// engine is closed), and probes each once.
func (e *epollEngine) poll(found func(*record, sockProbe)) {
	e.ticks++
	full := e.fullEvery > 0 && e.ticks%e.fullEvery == 0
	open := e.harvest()

	e.mu.Lock()
	e.cands = e.cands[:0]
	if full || !open {
		for _, r := range e.recs {
			e.cands = append(e.cands, candidate{r: r})
		}
	} else {
		for _, id := range e.ids {
			if r, ok := e.recs[id]; ok {
				e.cands = append(e.cands, candidate{r: r, event: true})
			}
		}
		for _, r := range e.every {
			e.cands = append(e.cands, candidate{r: r})
		}
	}
	e.mu.Unlock()

	for i, c := range e.cands {
		e.cands[i] = candidate{}
		r := c.r
		p := probeSocket(r.sock)
		// A Close that raced with the probe may have freed the descriptor
		// number for another socket: trust nothing about a closed record.
		if State(r.state.Load()) == StateClosed {
			continue
		}
		if !r.sock.tcp {
			e.recheck(r, c.event, p)
		}
		found(r, p)
	}
}

// recheck keeps a non-TCP socket whose peer shut down on the every-tick list
// until a probe confirms it: a peek cannot see the end of stream behind
// unread data, and the edge-triggered event will not come again.
func (e *epollEngine) recheck(r *record, event bool, p sockProbe) {
	confirmed := p.state >= sockPeerClosed
	if !event && !confirmed {
		return
	}
	e.mu.Lock()
	if e.recs[r.id] == r && !e.unpolled[r.id] {
		if confirmed {
			delete(e.every, r.id)
		} else {
			e.every[r.id] = r
		}
	}
	e.mu.Unlock()
}

// harvest drains the ready list into e.ids without blocking. It returns
// false when the engine is closed. The loop is bounded by the number of
// watched sockets: each registration is on the ready list at most once.
func (e *epollEngine) harvest() bool {
	e.ids = e.ids[:0]
	e.mu.Lock()
	rounds := len(e.recs)/harvestBatch + 2
	e.mu.Unlock()
	e.life.RLock()
	defer e.life.RUnlock()
	if e.epfd < 0 {
		return false
	}
	for range rounds {
		n, err := unix.EpollWait(e.epfd, e.events[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return true
		}
		for i := range n {
			e.ids = append(e.ids, eventID(&e.events[i]))
		}
		if n < len(e.events) {
			break
		}
	}
	return true
}

// close releases the epoll instance. Sockets still tracked are then probed
// on every poll, since Poll keeps working after Tracker.Close.
func (e *epollEngine) close() {
	e.life.Lock()
	if e.epfd >= 0 {
		unix.Close(e.epfd)
		e.epfd = -1
	}
	e.life.Unlock()
}
