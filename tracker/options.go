package tracker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/internal/stack"
)

// Defaults used by New when no option says otherwise.
const (
	DefaultPollInterval = time.Second
	DefaultGracePeriod  = 30 * time.Second
	DefaultStackDepth   = 32
	// DefaultFullSweepEvery is how many polls pass between two full sweeps
	// of the Linux epoll engine: five minutes at the default interval. A
	// sweep probes every connection (1 to 3 µs each), so at 10,000
	// connections its share of a tick is 0.05 to 0.1 ms.
	DefaultFullSweepEvery = 300
)

// An Option configures a Tracker made by New.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	pollInterval time.Duration
	grace        time.Duration
	stackDepth   int
	onLeak       func(Leak)
	onResolved   func(Leak)
	logger       *slog.Logger
	loggerSet    bool
	holdLimits   map[Kind]time.Duration

	fullSweepEvery int  // polls between full sweeps of the epoll engine; 0: never
	sweepOnly      bool // use the per-connection sweep even where epoll is available
	thresholds     Thresholds
	profile        bool        // WithProfile
	dumpTo         io.Writer   // WithSignalDump
	dumpOn         []os.Signal // WithSignalDump; none: off

	tracerProvider trace.TracerProvider // WithTracerProvider; nil: the global one
	meterProvider  metric.MeterProvider // WithMeterProvider; nil: the global one
	spanLimit      int                  // WithLeakSpanLimit
	spanLimitPer   time.Duration
}

func defaultConfig() config {
	return config{
		pollInterval: DefaultPollInterval,
		grace:        DefaultGracePeriod,
		stackDepth:   DefaultStackDepth,

		fullSweepEvery: DefaultFullSweepEvery,
		thresholds:     DefaultThresholds(),
		spanLimit:      DefaultLeakSpanLimit,
		spanLimitPer:   DefaultLeakSpanLimitPer,
	}
}

// WithPollInterval sets how often the background poller probes sockets and
// judges leaks. It must be positive. The default is one second.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithPollInterval(%v): the interval must be positive", d)
		}
		c.pollInterval = d
		return nil
	})
}

// WithGracePeriod sets how long a connection whose peer has closed may go
// without a Read or Write before it is judged leaked. The grace keeps a
// server that is still writing its reply to a half-closed peer from being
// reported. It must not be negative. The default is 30 seconds.
func WithGracePeriod(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithGracePeriod(%v): the grace period must not be negative", d)
		}
		c.grace = d
		return nil
	})
}

// WithStackDepth sets how many frames are captured at each open and close
// site, from 1 to 256. The default is 32. On amd64, a call path seen before
// is recognized by a walk of the frame pointers, whatever the depth, and only
// a new one pays for runtime.Callers; stacks deeper than 128 frames always do.
func WithStackDepth(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > stack.MaxDepth {
			return fmt.Errorf("WithStackDepth(%d): the depth must be between 1 and %d", n, stack.MaxDepth)
		}
		c.stackDepth = n
		return nil
	})
}

// WithOnLeak registers a callback called once for every resource judged
// leaked. It runs on the tracker's poller goroutine (or the caller of Poll),
// never on the goroutine doing I/O; a slow callback delays the next poll,
// and a panic in it is recovered and logged. It may call Close, which then
// returns without waiting for the poll that runs it; a Poll from inside it
// does nothing. A nil callback is ignored.
func WithOnLeak(fn func(Leak)) Option {
	return optionFunc(func(c *config) error {
		c.onLeak = fn
		return nil
	})
}

// WithOnResolved registers a callback called once when a resource that was
// reported leaked is closed after all, or collected by the runtime (its
// CloseStack is then empty). It runs like the WithOnLeak callback.
func WithOnResolved(fn func(Leak)) Option {
	return optionFunc(func(c *config) error {
		c.onResolved = fn
		return nil
	})
}

// WithLogger sets the logger for leak reports (Warn level) and resolved
// events (Info level). By default reports go to slog.Default() as it is when
// the report is made. A nil logger turns logging off.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		c.logger = l
		c.loggerSet = true
		return nil
	})
}

// WithHoldLimit sets how long a resource of the given kind may stay open
// before it is judged leaked with ReasonHeldTooLong, in the style of
// HikariCP's leakDetectionThreshold. Resources of kinds without a limit are
// never judged by age, which is the default for every kind. The limit must be
// positive. An empty kind means KindResource, as it does for Track.
func WithHoldLimit(kind Kind, d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if kind == "" {
			kind = KindResource
		}
		if d <= 0 {
			return fmt.Errorf("WithHoldLimit(%q, %v): the limit must be positive", kind, d)
		}
		if c.holdLimits == nil {
			c.holdLimits = make(map[Kind]time.Duration)
		}
		c.holdLimits[kind] = d
		return nil
	})
}

// WithFullSweepEvery sets how many polls pass between two full sweeps on
// Linux. Between them a poll costs in proportion to the sockets whose peer
// has closed: the tracker's epoll instance names them. A full sweep probes
// every tracked socket with getsockopt(TCP_INFO), about a microsecond each,
// and catches a peer close the watcher missed. 0 turns full sweeps off; n
// must not be negative. The default is DefaultFullSweepEvery. Other systems,
// and Linux when epoll is unavailable, probe every socket on every poll and
// ignore this option.
func WithFullSweepEvery(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 {
			return fmt.Errorf("WithFullSweepEvery(%d): the count must not be negative", n)
		}
		c.fullSweepEvery = n
		return nil
	})
}

// Validate reports the first invalid option, with the option's name in the
// message, without making a Tracker. New panics with the same error.
func Validate(opts ...Option) error {
	c := defaultConfig()
	return c.applyAll(opts)
}

func (c *config) applyAll(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(c); err != nil {
			return fmt.Errorf("connleak/tracker: invalid option: %w", err)
		}
	}
	return nil
}

// A TrackOption describes a resource given to Track.
type TrackOption interface {
	isTrackOption()
}

// The TrackOptions are data, applied by trackConfig.apply in one type switch:
// a closure per option, called through the interface, cost a copy of the
// whole config per option and call (a quarter of a pool's checkout), and a
// pointer to the config passed through the interface would have moved it to
// the heap on every Track.
type (
	trackAddrs      struct{ network, local, remote string }
	trackSkip       int
	trackPCs        []uintptr
	trackLabel      string
	trackLimit      time.Duration
	trackSpan       struct{ sc trace.SpanContext }
	trackAttributes []attribute.KeyValue
)

func (trackAddrs) isTrackOption()      {}
func (trackSkip) isTrackOption()       {}
func (trackPCs) isTrackOption()        {}
func (trackLabel) isTrackOption()      {}
func (trackLimit) isTrackOption()      {}
func (*trackSpan) isTrackOption()      {}
func (trackAttributes) isTrackOption() {}

// apply sets what Track's options say on tc; nil ones are skipped. The
// config stays where its caller keeps it: returned, its couple of hundred
// bytes were copied on every Track and Reopen.
func (tc *trackConfig) apply(opts []TrackOption) {
	for _, o := range opts {
		switch o := o.(type) {
		case trackAddrs:
			tc.network, tc.local, tc.remote = o.network, o.local, o.remote
		case trackSkip:
			tc.skip = int(o)
		case trackPCs:
			tc.pcs = o
		case trackLabel:
			tc.label = string(o)
		case trackLimit:
			tc.limit = time.Duration(o)
		case *trackSpan:
			tc.span = o.sc
		case trackAttributes:
			if len(tc.attrs) == 0 {
				tc.attrs = o
			} else {
				// o is capped, so this appends to a copy, never into the
				// option's array, which records share.
				tc.attrs = append(tc.attrs, o...)
			}
		}
	}
}

type trackConfig struct {
	network, local, remote string
	skip                   int
	label                  string
	limit                  time.Duration
	pcs                    []uintptr
	span                   trace.SpanContext    // TrackContext
	attrs                  []attribute.KeyValue // TrackAttributes
}

// TrackAddrs records the network and addresses a tracked resource talks over,
// shown in reports. Empty strings are left out.
func TrackAddrs(network, local, remote string) TrackOption {
	return trackAddrs{network, local, remote}
}

// TrackCallerSkip skips n more frames when the open-site stack is captured,
// for integrations that call Track on behalf of their own caller.
func TrackCallerSkip(n int) TrackOption {
	if n <= 0 {
		return nil
	}
	return trackSkip(n)
}

// TrackPCs gives the resource's open-site stack as program counters,
// innermost first, as runtime.Callers returns them, instead of the caller's
// stack: for an integration that tracks a resource on behalf of code that
// is not on its own stack, such as the handler a middleware calls. At most
// the tracker's stack depth (WithStackDepth) of them are kept, and the
// slice is copied. An empty pcs leaves the caller's stack in place.
func TrackPCs(pcs []uintptr) TrackOption {
	return trackPCs(pcs)
}

// TrackLabel attaches a short description, such as a SQL statement's first
// words or a request's method and path, shown in reports. It must not
// contain credentials.
func TrackLabel(s string) TrackOption {
	return trackLabel(s)
}

// TrackHoldLimit sets how long this one resource may stay open before it is
// judged leaked with ReasonHeldTooLong, in place of its kind's limit
// (WithHoldLimit): for an integration whose own options set limits on a
// tracker it was given. A limit that is not positive is ignored.
func TrackHoldLimit(d time.Duration) TrackOption {
	if d <= 0 {
		return nil
	}
	return trackLimit(d)
}
