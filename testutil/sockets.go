package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/connleak/connleak/internal/procwide"
	"github.com/connleak/connleak/internal/sock"
	"github.com/connleak/connleak/tracker"
)

// describeSocket is "socket tcp 127.0.0.1:41000 -> 127.0.0.1:5000,
// CLOSE_WAIT (fd 9)".
func describeSocket(s tracker.Socket) string {
	out := s.Network
	if s.LocalAddr != "" {
		out += " " + s.LocalAddr
	}
	if s.RemoteAddr != "" {
		out += " -> " + s.RemoteAddr
	}
	if s.State != "" {
		out += ", " + s.State
	}
	return fmt.Sprintf("socket %s (fd %d)", out, s.FD)
}

// socketBaseline is the process's sockets when WithProcessSockets was
// called, by cookie: the kernel's id of a socket, which, unlike a descriptor
// number, no later socket takes over. The kernel assigns a socket's cookie
// when it is first read, and the sweep reads it, so the sweeps of the
// verification read the same cookie for the same socket.
type socketBaseline struct {
	cookies map[uint64]struct{}
	err     error
}

func takeSocketBaseline() *socketBaseline {
	socks, err := sock.List()
	b := &socketBaseline{cookies: make(map[uint64]struct{}, len(socks)), err: err}
	for _, s := range socks {
		if s.Cookie != 0 {
			b.cookies[s.Cookie] = struct{}{}
		}
	}
	return b
}

// socketBaseline is the baseline the verification ignores: WithProcessSockets'
// when IgnoreCurrent is given too, and nil otherwise.
func (c *config) socketBaseline() *socketBaseline {
	if !c.ignoreCurrent {
		return nil
	}
	return c.sockBase
}

// unwrappedSockets returns the process's sockets that no wrapper of a
// tracker testutil knows owns, minus the IgnoreCurrent baseline; or a note
// saying why the sweep was skipped, or why nothing was ignored.
func unwrappedSockets(cfg *config) ([]tracker.Socket, string) {
	base := cfg.socketBaseline()
	socks, err := cfg.tracker.ProcessSockets()
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Sprintf("WithProcessSockets skipped: the process sweep is not supported on %s; only wrapped resources were checked", runtime.GOOS)
		}
		return nil, fmt.Sprintf("WithProcessSockets skipped: the process sweep failed: %v", err)
	}
	note := ""
	if base != nil && base.err != nil {
		note = fmt.Sprintf("IgnoreCurrent ignored no socket: the process sweep failed when WithProcessSockets was called: %v", base.err)
	}
	var owned map[string]bool
	var out []tracker.Socket
	for _, s := range socks {
		if s.Tracked {
			continue
		}
		if base != nil && s.Cookie != 0 && base.has(s.Cookie) {
			continue
		}
		if owned == nil {
			owned = addrsOwnedByTrackers(cfg.tracker)
		}
		if owned[addrKey(s.LocalAddr, s.RemoteAddr)] {
			continue
		}
		out = append(out, s)
	}
	return out, note
}

func (b *socketBaseline) has(cookie uint64) bool {
	_, ok := b.cookies[cookie]
	return ok
}

// Trackers testutil knows besides the verified one: those made by
// NewTracker that are still open, and tracker.Default() if something made
// it. A socket one of them wraps is reported by that tracker's own
// verification, with its stack, and is not an unwrapped socket.
var (
	liveMu       sync.Mutex
	liveTrackers = map[*tracker.Tracker]struct{}{}
)

func addLive(tr *tracker.Tracker) {
	liveMu.Lock()
	liveTrackers[tr] = struct{}{}
	liveMu.Unlock()
}

func removeLive(tr *tracker.Tracker) {
	liveMu.Lock()
	delete(liveTrackers, tr)
	liveMu.Unlock()
}

func addrKey(local, remote string) string { return local + "|" + remote }

// addOwned adds the addresses of tr's open resources to owned.
func addOwned(owned map[string]bool, tr *tracker.Tracker) {
	for _, r := range tr.Open() {
		if r.LocalAddr != "" {
			owned[addrKey(r.LocalAddr, r.RemoteAddr)] = true
		}
	}
}

func addrsOwnedByTrackers(verified *tracker.Tracker) map[string]bool {
	var trs []*tracker.Tracker
	if def := madeDefault(); def != nil {
		trs = append(trs, def)
	}
	liveMu.Lock()
	for tr := range liveTrackers {
		trs = append(trs, tr)
	}
	liveMu.Unlock()
	owned := map[string]bool{}
	for _, tr := range trs {
		if tr != verified {
			addOwned(owned, tr)
		}
	}
	return owned
}

// madeDefault returns tracker.Default() if something has made it, and nil
// otherwise, without making it: a verification of another tracker must not
// start the default tracker's poller, which would run for the rest of the
// process, and a default tracker nobody made wraps nothing.
func madeDefault() *tracker.Tracker {
	if !procwide.DefaultMade.Load() {
		return nil
	}
	return tracker.Default()
}
