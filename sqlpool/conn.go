package sqlpool

//lint:file-ignore SA1019 the wrappers offer the deprecated interfaces exactly when the driver does, and forward them

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"runtime"
	"time"

	"github.com/connleak/connleak/tracker"
)

// conn wraps a driver connection. database/sql calls a connection's methods
// one at a time, under its own lock of the connection, so the checkout
// fields need no lock of their own.
type conn struct {
	drv driver.Conn
	cfg *config
	h   *tracker.Handle // the driver connection, Connect to Close
	// out tracks the checkouts, one after another: the first is a Track,
	// each later one re-arms the same Handle (tracker.Handle.Reopen), which
	// costs a checkout its stack capture and no allocation, where a Track
	// costs a record, a Handle and a collection watch (about 1 µs, a large
	// part of a query on an embedded database). The reuse loses nothing:
	// the new checkout has an ID, time and line of its own, and the
	// Handle's watch still reports an open checkout dropped with its
	// connection (database/sql keeps a connection reachable until it
	// closes it, so that takes dropping the whole DB).
	out *tracker.Handle
	// busy: checked out now, out open.
	busy bool
	// fresh: no statement has run on this checkout yet. The rows of its
	// first query are carried by the checkout (see newRows).
	fresh bool
	sock  net.Conn // the socket under drv, when the tracker dialed it
	// hooks: drv has SessionResetter and Validator itself, so database/sql
	// would keep it after a rollback forced by a canceled context.
	hooks bool
	// discard: a rollback forced by a canceled context, which database/sql
	// answers by closing a connection without both hooks. database/sql
	// calls Rollback under its lock of the connection too.
	discard bool

	outAt time.Time // the checkout's start, for db.client.connection.use_time
}

// newConn wraps dc, just opened by the caller, as checked out: database/sql
// opens connections for a caller waiting for one.
func newConn(dc driver.Conn, cfg *config, sock net.Conn, ctx context.Context) driver.Conn {
	c := conn{drv: dc, cfg: cfg, sock: sock}
	c.h = cfg.tr.Track(KindConn, withSpan(cfg.connOpts, ctx)...)
	_, resetter := dc.(driver.SessionResetter)
	_, validator := dc.(driver.Validator)
	c.hooks = resetter && validator
	var mask uint
	if _, ok := dc.(driver.Pinger); ok {
		mask |= 1 << 0
	}
	if _, ok := dc.(driver.Execer); ok {
		mask |= 1 << 1
	}
	if _, ok := dc.(driver.ExecerContext); ok {
		mask |= 1 << 2
	}
	if _, ok := dc.(driver.Queryer); ok {
		mask |= 1 << 3
	}
	if _, ok := dc.(driver.QueryerContext); ok {
		mask |= 1 << 4
	}
	if _, ok := dc.(driver.ConnPrepareContext); ok {
		mask |= 1 << 5
	}
	if _, ok := dc.(driver.ConnBeginTx); ok {
		mask |= 1 << 6
	}
	if _, ok := dc.(driver.NamedValueChecker); ok {
		mask |= 1 << 7
	}
	w := wrapConn(c, mask)
	if base := w.(interface{ base() *conn }).base(); openedByThePool() {
		base.rest()
	} else {
		base.startCheckout(withSpan(cfg.outOpts, ctx))
	}
	return w
}

// openedByThePool reports whether database/sql is opening the connection on
// its own goroutine, which it does when a connection was discarded while
// callers waited for one: the caller, if it still waits, is handed the
// connection without a ResetSession, and no line of the caller's is on this
// stack. Such a connection starts idle in the pool, and its checkout starts
// at its first statement (see use), at the caller's line. It costs a few
// microseconds, once per connection.
func openedByThePool() bool {
	var pcs [48]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		switch f.Function {
		case "database/sql.(*DB).connectionOpener", "database/sql.(*DB).openNewConnection":
			return true
		}
		if !more {
			return false
		}
	}
}

func (c *conn) base() *conn { return c }

func (c *conn) driverObject() any { return c.drv }

// startCheckout tracks the connection as out of the pool from the line the
// options name; its socket leads its reports with that line.
func (c *conn) startCheckout(opts []tracker.TrackOption) {
	if c.out == nil {
		c.out = c.cfg.tr.Track(KindCheckout, opts...)
	} else {
		c.out = c.out.Reopen(opts...) // ends a checkout never returned, too
	}
	c.busy, c.fresh = true, true
	c.outAt = c.cfg.otel.checkoutStart()
	c.h.SetIdle(false)
	if c.sock != nil {
		c.out.Hold(c.sock)
	}
}

// use starts the checkout of a connection that database/sql handed out
// without a ResetSession, at the line of its first statement: one that
// database/sql opened for the pool (see openedByThePool). A DB.Conn taken
// that way is tracked from its first statement on.
func (c *conn) use(ctx context.Context) {
	if !c.busy {
		c.startCheckout(withSpan(c.cfg.outOpts, ctx))
	}
}

// endCheckout marks the connection back in the pool, idle (see rest).
func (c *conn) endCheckout() {
	if !c.busy {
		return
	}
	c.out.Close()
	c.busy = false
	c.cfg.otel.checkoutEnd(c.outAt)
	c.rest()
}

// rest marks the connection idle in the pool: its socket is held by the
// connection's own Handle, so that a server closing it now is reported as
// the pool's hygiene, and neither is a leak of the program's.
func (c *conn) rest() {
	if c.sock != nil {
		c.h.Hold(c.sock)
	}
	c.h.SetIdle(true)
}

// ResetSession is called by database/sql when it takes a connection that
// was used before out of the pool. It runs the driver's own ResetSession,
// then discards a connection whose socket the server has closed (see
// WithEviction), or one a canceled transaction left in doubt, by returning
// driver.ErrBadConn, on which database/sql closes it and takes or opens
// another. Otherwise the checkout starts here.
//
// sqlpool offers ResetSession and IsValid whatever the driver has: without
// them database/sql cannot tell sqlpool that a connection is taken or given
// back. A driver without ResetSession is treated as one whose reset
// succeeds, which is what database/sql does.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.discard {
		return driver.ErrBadConn
	}
	var err error
	if r, ok := c.drv.(driver.SessionResetter); ok {
		err = r.ResetSession(ctx)
		if errors.Is(err, driver.ErrBadConn) {
			return err
		}
	}
	if c.cfg.evict && c.sock != nil && c.cfg.tr.PeerClosed(c.sock) {
		c.cfg.evicted.Add(1)
		return driver.ErrBadConn
	}
	c.startCheckout(withSpan(c.cfg.resetOpts, ctx))
	return err // database/sql hands the connection out on other errors
}

// IsValid is called by database/sql when a connection is given back to the
// pool: the checkout ends here. It reports the driver's own IsValid (true for
// a driver without one, as database/sql assumes), and false after a
// rollback forced by a canceled context on a driver without both
// ResetSession and IsValid.
//
// database/sql keeps a connection with both methods after such a rollback
// (Tx's keepConnOnRollback), trusting the driver to know whether it is still
// usable, and closes one without them. Since the wrapper always has both,
// that false keeps database/sql's choice for such a driver: its
// connections are closed as before.
func (c *conn) IsValid() bool {
	c.endCheckout()
	if c.discard {
		return false
	}
	if v, ok := c.drv.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Close closes the driver connection and ends its tracking. The driver
// closes its socket first, while the connection's Handle still holds it: a
// pool discarding an idle connection whose server closed it (see
// WithEviction) is then reported with tracker.ReasonIdleInPool, whether or
// not a poll saw the server's close before.
func (c *conn) Close() error {
	c.out.Close()
	c.busy = false
	err := c.drv.Close()
	c.h.Close()
	return err
}

// Prepare prepares a statement, tracked until its Close.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	c.use(context.Background())
	s, err := c.drv.Prepare(query)
	if err != nil {
		return nil, err
	}
	return c.newStmt(s, nil), nil
}

// Begin begins a transaction, tracked until its Commit or Rollback.
func (c *conn) Begin() (driver.Tx, error) {
	c.use(context.Background())
	tx, err := c.drv.Begin()
	if err != nil {
		return nil, err
	}
	return c.newTx(tx, context.Background()), nil
}

type connPinger conn

func (c *connPinger) Ping(ctx context.Context) error {
	(*conn)(c).use(ctx)
	c.fresh = false
	if p, ok := c.drv.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil // what database/sql does for a driver without Pinger
}

type connExecer conn

func (c *connExecer) Exec(query string, args []driver.Value) (driver.Result, error) {
	(*conn)(c).use(context.Background())
	c.fresh = false
	if e, ok := c.drv.(driver.Execer); ok {
		return e.Exec(query, args)
	}
	return nil, driver.ErrSkip
}

type connExecerContext conn

func (c *connExecerContext) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	(*conn)(c).use(ctx)
	c.fresh = false
	if e, ok := c.drv.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

type connQueryer conn

func (c *connQueryer) Query(query string, args []driver.Value) (driver.Rows, error) {
	q, ok := c.drv.(driver.Queryer)
	if !ok {
		return nil, driver.ErrSkip
	}
	(*conn)(c).use(context.Background())
	r, err := q.Query(query, args)
	if err != nil {
		return nil, err
	}
	return (*conn)(c).newRows(r, nil), nil
}

type connQueryerContext conn

func (c *connQueryerContext) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.drv.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	(*conn)(c).use(ctx)
	r, err := q.QueryContext(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return (*conn)(c).newRows(r, ctx), nil
}

type connPrepareContext conn

func (c *connPrepareContext) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	p, ok := c.drv.(driver.ConnPrepareContext)
	if !ok {
		return (*conn)(c).Prepare(query)
	}
	(*conn)(c).use(ctx)
	s, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return (*conn)(c).newStmt(s, ctx), nil
}

type connBeginTx conn

func (c *connBeginTx) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := c.drv.(driver.ConnBeginTx)
	if !ok {
		return nil, errors.New("connleak/sqlpool: the driver connection has no BeginTx")
	}
	(*conn)(c).use(ctx)
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return (*conn)(c).newTx(tx, ctx), nil
}

type connNamedValueChecker conn

func (c *connNamedValueChecker) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.drv.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
