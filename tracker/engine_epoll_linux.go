//go:build linux

package tracker

import (
	"sync"

	"github.com/connleak/connleak/internal/sock"
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

// Registration states of a watched record (record.watch).
const (
	watchNone       uint8 = iota // not handed to the engine
	watchRegistered              // registered with epoll
	watchEveryTick               // epoll refused it: probed on every poll
	watchLost                    // its descriptor no longer holds its socket: never probed again
)

// epollEngine watches every tracked stream socket through a second epoll
// instance owned by the tracker (the runtime's netpoller has its own), so
// that a tick costs in proportion to the sockets whose peer has closed, not
// to all of them. Each registration carries the record id as its event data,
// never the descriptor number, which may be reused. Candidates are confirmed
// by a probe (TCP_INFO for TCP), and every fullEvery ticks every socket is
// probed, to catch anything the watcher missed.
//
// Sockets are registered by the poller, on the first tick after they are
// wrapped, not on the program's goroutine (see Tracker.promote): a
// connection closed before the next tick never reaches the engine, and one
// that lives on costs its registration off the I/O path. EPOLL_CTL_ADD reports a socket whose peer
// closed before it was registered at once, so nothing is missed.
type epollEngine struct {
	fullEvery uint64

	// life guards epfd: watch, unwatch and poll use it under the read
	// lock, close sets it to -1 under the write lock, so that no call ever
	// reaches a descriptor number that was closed and reused.
	life sync.RWMutex
	epfd int

	mu     sync.Mutex
	closed bool
	// recs holds every watched record, by id.
	recs map[uint64]*record
	// every holds records probed on every tick: those epoll refused, and
	// non-TCP sockets whose peer shut down but whose probe could not confirm
	// it yet (a peek is blind behind unread data, and an edge-triggered event
	// does not come again).
	every map[uint64]*record

	// Owned by poll, which runs under the tracker's poll lock.
	ticks  uint64
	events [harvestBatch]unix.EpollEvent
	ids    []uint64
	batch  []*record // registered since the last poll, to be probed once
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
	return &epollEngine{
		fullEvery: uint64(max(fullEvery, 0)),
		epfd:      fd,
		recs:      make(map[uint64]*record),
		every:     make(map[uint64]*record),
	}, nil
}

func eventFor(id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: epollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// watch registers r with epoll; the poller calls it (see Tracker.promote).
// Registering under the engine lock means an unwatch either comes first
// (and r is skipped) or finds it registered (and removes it).
func (e *epollEngine) watch(r *record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !r.claimForEngine() {
		return // closed before the poller got to it
	}
	e.recs[r.id] = r
	if e.closed {
		r.watch = watchEveryTick
		e.every[r.id] = r
		return
	}
	e.add(r)
	if r.watch == watchRegistered {
		e.batch = append(e.batch, r)
	}
}

// unwatch runs before the wrapper closes the descriptor, or on the runtime's
// cleanup goroutine when the wrapper was collected.
func (e *epollEngine) unwatch(r *record) {
	if r.dropBeforeEngine() {
		return
	}
	e.mu.Lock()
	_, watched := e.recs[r.id]
	registered := watched && r.watch == watchRegistered
	delete(e.recs, r.id)
	delete(e.every, r.id)
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
	if c := r.cookie.Load(); c != 0 && sock.Cookie(r.sock.FD) != c {
		// The program closed the socket under the wrapper and the number was
		// reused: same reasoning.
		return
	}
	e.life.RLock()
	if e.epfd >= 0 {
		// ENOENT and EBADF mean the kernel already dropped it.
		_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, int(r.sock.FD), nil)
	}
	e.life.RUnlock()
}

// add registers r; it runs under e.mu.
func (e *epollEngine) add(r *record) {
	known := r.cookie.Load() // a unix socket's, read when it was wrapped
	if !r.identify() || (known != 0 && sock.Cookie(r.sock.FD) != known) {
		// The socket was closed under its wrapper (or by the runtime, the
		// wrapper's cleanup still to come) and the number reused: registering
		// it would watch another socket under this id.
		r.watch = watchLost
		return
	}
	ev := eventFor(r.id)
	e.life.RLock()
	var err error = unix.EINVAL
	if e.epfd >= 0 {
		err = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, int(r.sock.FD), &ev)
	}
	e.life.RUnlock()
	if err != nil {
		// EEXIST (the same socket wrapped twice by this tracker), ENOSPC
		// (max_user_watches), ENOMEM: the socket is probed on every tick
		// instead, so nothing goes undetected.
		r.watch = watchEveryTick
		e.every[r.id] = r
		return
	}
	r.watch = watchRegistered
}

// poll harvests the sockets epoll reported, adds those registered since the
// last tick and those probed on every tick (or every socket, when a full
// sweep is due or the engine is closed), and probes each once.
func (e *epollEngine) poll(found func(*record, sock.Probe)) {
	e.ticks++
	full := e.fullEvery > 0 && e.ticks%e.fullEvery == 0
	open := e.harvest()

	e.mu.Lock()
	e.cands = e.cands[:0]
	if full || !open {
		for _, r := range e.recs {
			// A lost record's descriptor names another socket, whose state
			// a probe would report as this record's.
			if r.watch != watchLost {
				e.cands = append(e.cands, candidate{r: r})
			}
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
		for _, r := range e.batch {
			e.cands = append(e.cands, candidate{r: r})
		}
	}
	clear(e.batch)
	e.batch = e.batch[:0]
	e.mu.Unlock()

	for i, c := range e.cands {
		e.cands[i] = candidate{}
		r := c.r
		p := sock.ProbeSocket(r.handle())
		// A Close that raced with the probe may have freed the descriptor
		// number for another socket: trust nothing about a closed record.
		if State(r.state.Load()) == StateClosed {
			continue
		}
		if !r.sock.TCP {
			e.recheck(r, c.event, p)
		}
		found(r, p)
	}
}

// recheck keeps a non-TCP socket whose peer shut down on the every-tick list
// until a probe confirms it: a peek cannot see the end of stream behind
// unread data, and the edge-triggered event will not come again.
func (e *epollEngine) recheck(r *record, event bool, p sock.Probe) {
	confirmed := p.State >= sock.PeerClosed
	if !event && !confirmed {
		return
	}
	e.mu.Lock()
	if e.recs[r.id] == r && r.watch == watchRegistered {
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

// close releases the epoll instance. Poll keeps working after Tracker.Close:
// every socket still tracked is then probed on every poll.
func (e *epollEngine) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.life.Lock()
	if e.epfd >= 0 {
		unix.Close(e.epfd)
		e.epfd = -1
	}
	e.life.Unlock()
}

// compact gives the engine's emptied maps fresh ones (see Tracker.compact).
func (e *epollEngine) compact() {
	e.mu.Lock()
	e.recs = emptied(e.recs)
	e.every = emptied(e.every)
	e.mu.Unlock()
}
