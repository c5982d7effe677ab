package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/connleak/connleak/internal/sock"
)

// HealthStatus grades the process by its connections stuck with a closed
// peer, by the thresholds of WithThresholds.
type HealthStatus int

const (
	// HealthOK: no threshold crossed.
	HealthOK HealthStatus = iota
	// HealthWarning: a warning threshold crossed; the process still works.
	HealthWarning
	// HealthCritical: a critical threshold crossed; descriptors are running
	// out, or connections have been stuck for a long time.
	HealthCritical
)

// String returns "ok", "warning" or "critical".
func (s HealthStatus) String() string {
	switch s {
	case HealthOK:
		return "ok"
	case HealthWarning:
		return "warning"
	case HealthCritical:
		return "critical"
	}
	return "HealthStatus(" + strconv.Itoa(int(s)) + ")"
}

// level is the slog level of reports made at this status.
func (s HealthStatus) level() slog.Level {
	if s >= HealthCritical {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// Health is the tracker's health status and why.
type Health struct {
	Status HealthStatus
	// Reasons names every threshold crossed, the worst first; empty when
	// Status is HealthOK.
	Reasons []string
	// CloseWait is how many tracked connections are open here while their
	// peer has closed (the kernel's CLOSE_WAIT, or CLOSE after a reset).
	CloseWait int
	// OldestCloseWait is how long the oldest of them has been so, counted
	// from its PeerClosedAt.
	OldestCloseWait time.Duration
	// FDLimit is the soft RLIMIT_NOFILE the count is measured against; 0
	// when the system has none or it is unlimited.
	FDLimit uint64
}

// Thresholds are the limits that grade Health. A zero field turns its
// check off.
type Thresholds struct {
	// CloseWaitWarning: a warning when more connections than this are in
	// CLOSE_WAIT.
	CloseWaitWarning int
	// CloseWaitCriticalFraction: critical when more connections than this
	// fraction of the soft RLIMIT_NOFILE are in CLOSE_WAIT.
	CloseWaitCriticalFraction float64
	// CloseWaitAgeWarning and CloseWaitAgeCritical: a warning, or critical,
	// when a connection has been in CLOSE_WAIT for longer than this.
	CloseWaitAgeWarning  time.Duration
	CloseWaitAgeCritical time.Duration
}

// DefaultThresholds returns the thresholds used unless WithThresholds says
// otherwise, defaults from the field: more than 100 connections in
// CLOSE_WAIT is a warning, more than half the soft descriptor limit is
// critical; one in CLOSE_WAIT for more than 5 minutes is a warning, for more
// than 30 minutes critical.
func DefaultThresholds() Thresholds {
	return Thresholds{
		CloseWaitWarning:          100,
		CloseWaitCriticalFraction: 0.5,
		CloseWaitAgeWarning:       5 * time.Minute,
		CloseWaitAgeCritical:      30 * time.Minute,
	}
}

// WithThresholds sets the thresholds of Health and of the log level of
// reports (Error while critical, Warn otherwise). Fields must not be
// negative, and the fraction must be at most 1.
func WithThresholds(th Thresholds) Option {
	return optionFunc(func(c *config) error {
		if th.CloseWaitWarning < 0 || th.CloseWaitCriticalFraction < 0 || th.CloseWaitCriticalFraction > 1 ||
			th.CloseWaitAgeWarning < 0 || th.CloseWaitAgeCritical < 0 {
			return fmt.Errorf("WithThresholds(%+v): counts and ages must not be negative, the fraction must be in [0, 1]", th)
		}
		c.thresholds = th
		return nil
	})
}

// Health grades the tracked connections whose peer has closed against the
// thresholds: those that a poll's probe or the program's own Read found
// peer-closed and that are not closed yet, with their ages measured now
// from PeerClosedAt. It probes nothing itself (Poll does), and costs in
// proportion to the tracker's suspects (connections whose peer has closed,
// and resources whose kind has a hold limit), not to every connection.
func (t *Tracker) Health() Health {
	h := t.health(t.now())
	if h.CloseWait == 0 { // graded without the limit, which nothing counted against
		h.FDLimit = sock.SoftFDLimit()
	}
	return h
}

func (t *Tracker) health(now int64) Health {
	var h Health
	oldest := int64(0)
	for _, r := range t.suspectList() {
		if r.kind == KindListener || State(r.state.Load()) != StatePeerClosed {
			continue
		}
		h.CloseWait++
		if since := r.peerClosedAt.Load(); oldest == 0 || since < oldest {
			oldest = since
		}
	}
	if h.CloseWait == 0 {
		// The poller grades every tick: a healthy one reads no limit.
		return h
	}
	h.OldestCloseWait = time.Duration(now - oldest)
	h.FDLimit = sock.SoftFDLimit()
	th := t.cfg.thresholds
	var crit, warn []string
	if f := th.CloseWaitCriticalFraction; f > 0 && h.FDLimit > 0 && float64(h.CloseWait) > f*float64(h.FDLimit) {
		crit = append(crit, fmt.Sprintf("%d connections in CLOSE_WAIT: more than %g%% of the descriptor limit %d",
			h.CloseWait, f*100, h.FDLimit))
	} else if th.CloseWaitWarning > 0 && h.CloseWait > th.CloseWaitWarning {
		warn = append(warn, fmt.Sprintf("%d connections in CLOSE_WAIT: more than %d", h.CloseWait, th.CloseWaitWarning))
	}
	age := h.OldestCloseWait.Round(time.Second)
	if d := th.CloseWaitAgeCritical; d > 0 && h.OldestCloseWait > d {
		crit = append(crit, fmt.Sprintf("a connection in CLOSE_WAIT for %s: more than %s", age, d))
	} else if d := th.CloseWaitAgeWarning; d > 0 && h.OldestCloseWait > d {
		warn = append(warn, fmt.Sprintf("a connection in CLOSE_WAIT for %s: more than %s", age, d))
	}
	switch {
	case len(crit) > 0:
		h.Status = HealthCritical
	case len(warn) > 0:
		h.Status = HealthWarning
	}
	h.Reasons = append(crit, warn...)
	return h
}

// logHealth logs a change of health status: Error on becoming critical,
// Warn on a warning, Info on recovery. It runs on the poller, after the
// reports of the tick.
func (t *Tracker) logHealth(prev HealthStatus, h Health) {
	if h.Status == prev {
		return
	}
	logger := t.logger()
	if logger == nil {
		return
	}
	// A log handler is a callback too: its Poll or Close must not wait for
	// the poll that runs it.
	t.reporter.Store(goroutineID())
	defer t.reporter.Store(0)
	level := slog.LevelInfo
	if h.Status != HealthOK {
		level = h.Status.level()
	}
	logger.LogAttrs(context.Background(), level, "connleak: health "+h.Status.String(),
		slog.String("was", prev.String()),
		slog.Any("reasons", h.Reasons),
		slog.Int("close_wait", h.CloseWait),
		slog.Duration("oldest_close_wait", h.OldestCloseWait))
}
