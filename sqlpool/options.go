package sqlpool

import (
	"sync/atomic"
	"time"

	"github.com/connleak/connleak/tracker"
)

// An Option configures the wrappers made by Open, OpenDB, WrapDriver,
// WrapConnector and Register.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is shared by every wrapper one call made, and by what they make.
type config struct {
	tr            *tracker.Tracker
	checkoutLimit time.Duration
	rowsLimit     time.Duration
	txLimit       time.Duration
	evict         bool
	evicted       atomic.Uint64
	otel          otelConfig

	// The options of each Track, made once: a TrackOption made per call
	// would cost an allocation on every query. Each skips sqlpool's frames
	// up to database/sql's, which the headline rule passes over to the
	// program's line.
	connOpts, resetOpts, outOpts, rowsOpts, stmtOpts, txOpts []tracker.TrackOption
}

func newConfig(opts []Option) *config {
	c := &config{evict: true}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.tr == nil {
		c.tr = tracker.Default()
	}
	// Frames between Track and database/sql: newConn <- Connect;
	// startCheckout <- ResetSession, or <- newConn <- Connect, or <- use <-
	// a statement (QueryContext, ExecContext, ...); newRows <- QueryContext
	// (of a conn or a stmt); newStmt <- PrepareContext; newTx <- BeginTx.
	c.connOpts = []tracker.TrackOption{tracker.TrackCallerSkip(2)}
	c.resetOpts = []tracker.TrackOption{tracker.TrackCallerSkip(2), tracker.TrackHoldLimit(c.checkoutLimit)}
	// A checkout started one frame further down: by newConn, or by use.
	c.outOpts = []tracker.TrackOption{tracker.TrackCallerSkip(3), tracker.TrackHoldLimit(c.checkoutLimit)}
	c.rowsOpts = []tracker.TrackOption{tracker.TrackCallerSkip(2), tracker.TrackHoldLimit(c.rowsLimit)}
	c.stmtOpts = []tracker.TrackOption{tracker.TrackCallerSkip(2)}
	c.txOpts = []tracker.TrackOption{tracker.TrackCallerSkip(2), tracker.TrackHoldLimit(c.txLimit)}
	return c
}

// WithTracker records the connections, checkouts, rows, statements and
// transactions in tr instead of tracker.Default(). To link each driver
// connection to its socket, give the driver the same tracker's dialer
// (tr.WrapDialer(nil)). A nil tracker means tracker.Default().
func WithTracker(tr *tracker.Tracker) Option {
	return optionFunc(func(c *config) { c.tr = tr })
}

// WithCheckoutHoldLimit reports a connection checked out of the pool (by a
// query, a transaction or DB.Conn) for longer than d with
// tracker.ReasonHeldTooLong and the stack of the line that took it, as
// HikariCP's leakDetectionThreshold does; a later return resolves the
// report. 0, the default, sets no limit, and so does a negative d.
func WithCheckoutHoldLimit(d time.Duration) Option {
	return optionFunc(func(c *config) { c.checkoutLimit = max(d, 0) })
}

// WithRowsHoldLimit reports Rows open for longer than d, from the line that
// ran the query. 0, the default, sets no limit, and so does a negative d.
func WithRowsHoldLimit(d time.Duration) Option {
	return optionFunc(func(c *config) { c.rowsLimit = max(d, 0) })
}

// WithTxHoldLimit reports a transaction neither committed nor rolled back
// after d, from the line that began it. 0, the default, sets no limit, and so
// does a negative d.
func WithTxHoldLimit(d time.Duration) Option {
	return optionFunc(func(c *config) { c.txLimit = max(d, 0) })
}

// WithEviction turns on (the default) or off the discarding of a pooled
// connection whose server has closed its socket while it sat idle: at
// checkout, after the driver's own ResetSession, such a connection returns
// driver.ErrBadConn, and database/sql closes it and takes another. Each one is
// counted (see StatsOf). Off, a dead connection is handed out as the driver
// alone would hand it out. Eviction needs the socket, so the driver must dial
// with the tracker's dialer (see the package documentation). The check is
// one system call at each checkout, a poll of the socket (see
// tracker.Tracker.PeerClosed).
func WithEviction(on bool) Option {
	return optionFunc(func(c *config) { c.evict = on })
}
