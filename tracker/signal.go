package tracker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
)

// WithSignalDump writes the tracker's report (WriteReport) to w each time
// the process receives one of sigs: the in-process answer to
// lsof -iTCP -sTCP:CLOSE_WAIT for a live service, with the lines of code. A
// nil w means os.Stderr; no sigs means SIGUSR1, which only Unix systems
// have. The dump runs on a goroutine of its own, never on a goroutine doing
// I/O, and stops when the tracker is closed. Off by default: a signal the
// program handles itself should not also dump.
func WithSignalDump(w io.Writer, sigs ...os.Signal) Option {
	return optionFunc(func(c *config) error {
		if len(sigs) == 0 {
			sigs = defaultDumpSignals
		}
		if len(sigs) == 0 {
			return fmt.Errorf("WithSignalDump: this system has no SIGUSR1; name the signals")
		}
		if w == nil {
			w = os.Stderr
		}
		c.dumpTo, c.dumpOn = w, append([]os.Signal(nil), sigs...)
		return nil
	})
}

// signalDump is the goroutine that dumps the report on a signal.
type signalDump struct {
	ch   chan os.Signal
	stop chan struct{}
	done chan struct{}
}

// startSignalDump starts the dump goroutine if WithSignalDump asked for
// one; it returns nil otherwise.
func startSignalDump(t *Tracker) *signalDump {
	if len(t.cfg.dumpOn) == 0 {
		return nil
	}
	d := &signalDump{ch: make(chan os.Signal, 1), stop: make(chan struct{}), done: make(chan struct{})}
	signal.Notify(d.ch, t.cfg.dumpOn...)
	go func() {
		defer close(d.done)
		for {
			select {
			case <-d.stop:
				return
			case <-d.ch:
				if err := t.WriteReport(t.cfg.dumpTo); err != nil {
					if lg := t.logger(); lg != nil {
						lg.Warn("connleak: writing the report on signal failed", slog.Any("error", err))
					}
				}
			}
		}
	}()
	return d
}

// close stops the dump goroutine and waits for it; safe on nil.
func (d *signalDump) close() {
	if d == nil {
		return
	}
	signal.Stop(d.ch)
	close(d.stop)
	<-d.done
}
