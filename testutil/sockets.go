package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/connleak/connleak/tracker"
)

func sockKey(s tracker.Socket) string {
	return fmt.Sprintf("%d %s %s %s", s.FD, s.Network, s.LocalAddr, s.RemoteAddr)
}

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

// socketBaseline is the process's sockets when IgnoreCurrent was called.
type socketBaseline struct {
	keys map[string]bool
	err  error
}

func takeSocketBaseline() *socketBaseline {
	socks, err := tracker.Default().ProcessSockets()
	b := &socketBaseline{keys: make(map[string]bool, len(socks)), err: err}
	for _, s := range socks {
		b.keys[sockKey(s)] = true
	}
	return b
}

// unwrappedSockets returns the process's sockets that no wrapper of a
// tracker testutil knows owns, minus the IgnoreCurrent baseline; or a note
// saying why the sweep was skipped.
func unwrappedSockets(cfg *config) ([]tracker.Socket, string) {
	socks, err := cfg.tracker.ProcessSockets()
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Sprintf("WithProcessSockets skipped: the process sweep is not supported on %s; only wrapped resources were checked", runtime.GOOS)
		}
		return nil, fmt.Sprintf("WithProcessSockets skipped: the process sweep failed: %v", err)
	}
	var owned map[string]bool
	var out []tracker.Socket
	for _, s := range socks {
		if s.Tracked {
			continue
		}
		if cfg.sockBase != nil && cfg.sockBase.keys[sockKey(s)] {
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
	return out, ""
}

// Trackers testutil knows besides the verified one: those made by
// NewTracker that are still open, and tracker.Default(). A socket one of them
// wraps is reported by that tracker's own verification, with its stack, and
// is not an unwrapped socket.
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

func addrsOwnedByTrackers(verified *tracker.Tracker) map[string]bool {
	liveMu.Lock()
	trs := []*tracker.Tracker{tracker.Default()}
	for tr := range liveTrackers {
		trs = append(trs, tr)
	}
	liveMu.Unlock()
	owned := map[string]bool{}
	for _, tr := range trs {
		if tr == verified {
			continue
		}
		for _, r := range tr.Open() {
			if r.LocalAddr != "" {
				owned[addrKey(r.LocalAddr, r.RemoteAddr)] = true
			}
		}
	}
	return owned
}
