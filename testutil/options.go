package testutil

import (
	"fmt"
	"time"

	"github.com/connleak/connleak/tracker"
	"go.uber.org/goleak"
)

// DefaultTimeout is how long VerifyNone and VerifyTestMain wait, in total,
// for resources to close before they report them. Closes are often
// asynchronous (a server goroutine closing its side, a pool returning a
// connection), so a short wait with backoff keeps such tests from failing
// without hiding real leaks.
const DefaultTimeout = 500 * time.Millisecond

// An Option configures VerifyNone, VerifyTestMain and NewTracker, in the
// style of goleak's options. A nil Option is ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracker    *tracker.Tracker
	trackerSet bool
	timeout    time.Duration

	// IgnoreCurrent: resources opened before since are ignored, and so are
	// the sockets of sockBase, when WithProcessSockets is given too.
	since         time.Time
	goleakBase    []goleak.Option
	ignoreCurrent bool

	ignoreFuncs []string

	goroutines bool
	goleakOpts []goleak.Option

	processSockets bool
	sockBase       *socketBaseline // the sockets open when WithProcessSockets was called

	errs []error // invalid options, reported as test failures
}

func newConfig(opts []Option) *config {
	c := &config{timeout: DefaultTimeout}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithTracker verifies the given tracker instead of tracker.Default(): the
// tracker the code under test was given. A nil tracker fails the test with a
// message saying so.
func WithTracker(tr *tracker.Tracker) Option {
	return optionFunc(func(c *config) {
		if tr == nil {
			c.fail("WithTracker(nil): no tracker to verify")
			return
		}
		c.tracker, c.trackerSet = tr, true
	})
}

// WithTimeout sets the total time to wait for resources (and, with
// WithGoroutines, goroutines) to go away before reporting them. The wait
// retries with backoff and returns as soon as nothing is left; it is one
// budget for everything checked, not one per kind. Zero checks once without
// waiting. A negative timeout fails the test with a message saying so. The
// default is DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.fail("WithTimeout(%v): the timeout must not be negative", d)
			return
		}
		c.timeout = d
	})
}

// IgnoreCurrent ignores everything open when IgnoreCurrent is called, so
// that
//
//	defer testutil.VerifyNone(t, testutil.IgnoreCurrent())
//
// reports only what the test itself left open. The snapshot is taken when
// the option is built, not when it is applied: resources opened after it in
// any tracker are checked, and with WithGoroutines the goroutines running now
// are ignored as well.
//
// IgnoreCurrent lists no socket and starts no tracker. The process's sockets
// are listed only for WithProcessSockets, when that option is built; with
// both options, the sockets open when WithProcessSockets() was called are
// ignored. Write the two in the same call, so that both snapshots are of the
// same moment:
//
//	defer testutil.VerifyNone(t, testutil.IgnoreCurrent(), testutil.WithProcessSockets())
func IgnoreCurrent() Option {
	since := time.Now()
	gbase := goleak.IgnoreCurrent()
	return optionFunc(func(c *config) {
		c.since = since
		c.goleakBase = append(c.goleakBase, gbase)
		c.ignoreCurrent = true
	})
}

// IgnoreOpenedBy ignores resources whose open-site stack (or, for an
// accepted connection, the stack of its first Read or Write) passes through
// the named function. The name is fully qualified as in a goroutine dump,
// for example "example.com/app/cache.(*Pool).dial"; a name without the
// import path's directories ("cache.(*Pool).dial") also matches. An empty
// name fails the test with a message saying so.
func IgnoreOpenedBy(funcName string) Option {
	return optionFunc(func(c *config) {
		if funcName == "" {
			c.fail("IgnoreOpenedBy(\"\"): the function name must not be empty")
			return
		}
		c.ignoreFuncs = append(c.ignoreFuncs, funcName)
	})
}

// WithGoroutines also checks for leaked goroutines with goleak, passing it
// the given goleak options, and reports them in the same failure as the
// resources. The wait for goroutines to exit shares the one timeout, though a
// check that finds goroutines takes at least as long as goleak itself retries
// before it reports them, whatever the timeout. The poller goroutines of
// trackers, and testutil's own, are never reported. Like goleak, the check is
// process-wide: goroutines of tests running in parallel are seen too, so
// under t.Parallel use it in VerifyTestMain. goleak options that goleak
// refuses (goleak.Cleanup, which only its own VerifyNone and VerifyTestMain
// take) fail the check with goleak's message.
func WithGoroutines(opts ...goleak.Option) Option {
	return optionFunc(func(c *config) {
		c.goroutines = true
		for _, o := range opts {
			if o != nil {
				c.goleakOpts = append(c.goleakOpts, o)
			}
		}
	})
}

// WithProcessSockets also lists the process's own sockets (the process sweep
// of tracker.ProcessSockets: what lsof shows for this process, read from
// inside it) and reports those that no wrapper of the verified tracker owns,
// with their addresses and TCP states; there is no stack for them, since no
// wrapper saw them open. The check is process-wide: under t.Parallel it sees
// the sockets of other tests. Where the sweep is not supported (it is on
// Linux) the check is skipped with a note in the test log.
//
// WithProcessSockets lists the process's sockets when it is called, as a
// baseline that IgnoreCurrent applies: with both options, the sockets open
// when WithProcessSockets() was called are ignored, and those opened after it
// are reported. Without IgnoreCurrent every unwrapped socket is reported.
// Sockets are told apart by the kernel's socket cookie, so one opened later
// on the descriptor number of a closed one is still reported.
func WithProcessSockets() Option {
	base := takeSocketBaseline()
	return optionFunc(func(c *config) {
		c.processSockets = true
		c.sockBase = base
	})
}

// defaultPoller is the function the poller goroutine of tracker.Default()
// runs in. tracker gives it a name of its own so that it can be told from the
// poller of a tracker someone forgot to Close.
const defaultPoller = "github.com/connleak/connleak/tracker.(*Tracker).runProcessWide"

// IgnoreDefaultPoller is the goleak option that leaves out the poller
// goroutine of tracker.Default(). That tracker is never closed: once anything
// has asked for it (VerifyNone and VerifyTestMain without WithTracker do, as
// does code that wraps through it), its poller runs for the life of the
// process. A package that also checks goroutines with goleak directly passes
// it to goleak:
//
//	defer goleak.VerifyNone(t, testutil.IgnoreDefaultPoller())
//
// or, in TestMain, goleak.VerifyTestMain(m, testutil.IgnoreDefaultPoller()).
// Only that one goroutine is left out: the poller of a tracker made with
// tracker.New and never closed is still reported. WithGoroutines applies it
// already.
func IgnoreDefaultPoller() goleak.Option {
	return goleak.IgnoreAnyFunction(defaultPoller)
}
