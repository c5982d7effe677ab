package sqlpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"time"

	"github.com/connleak/connleak/tracker"
)

// The kinds of the resources sqlpool tracks.
const (
	// KindConn is a driver connection, from its Connect to its Close.
	KindConn tracker.Kind = "sql.conn"
	// KindCheckout is a connection out of the pool: from the line that took
	// it (a query, a transaction, DB.Conn) to its return. A query that
	// takes a connection (DB.Query, DB.QueryRow, Stmt.Query) returns it when
	// its rows are closed or read to the end: rows left open are reported
	// as this checkout, at the query's line.
	KindCheckout tracker.Kind = "sql.checkout"
	// KindRows is the rows of a query on a connection already checked out
	// (in a transaction, on a DB.Conn after its first statement), from the
	// query's line to their Close or their last row.
	KindRows tracker.Kind = "sql.rows"
	// KindStmt is a prepared statement, to its Close.
	KindStmt tracker.Kind = "sql.stmt"
	// KindTx is a transaction, to its Commit or Rollback.
	KindTx tracker.Kind = "sql.tx"
)

// Open opens a database as sql.Open does, with the driver registered under
// driverName wrapped as WrapDriver wraps it. Like sql.Open it does not
// connect. Its errors never contain the dsn.
func Open(driverName, dsn string, opts ...Option) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	d := probe.Driver()
	if err := probe.Close(); err != nil {
		return nil, err
	}
	cfg := newConfig(append([]Option{WithPoolName(dsnPoolName(driverName, dsn))}, opts...))
	var c driver.Connector
	if dc, ok := d.(driver.DriverContext); ok {
		if c, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	} else {
		c = dsnConnector{dsn: dsn, d: d}
	}
	return cfg.observeDB(sql.OpenDB(wrapConnectorCfg(c, cfg))), nil
}

// OpenDB opens a database on the connector as sql.OpenDB does, wrapped as
// WrapConnector wraps it.
func OpenDB(c driver.Connector, opts ...Option) *sql.DB {
	if c == nil {
		return sql.OpenDB(nil)
	}
	cfg := newConfig(opts)
	return cfg.observeDB(sql.OpenDB(wrapConnectorCfg(c, cfg)))
}

// Register registers d, wrapped as WrapDriver wraps it, under name with
// sql.Register, which panics if name is taken or d is nil.
func Register(name string, d driver.Driver, opts ...Option) {
	if d == nil {
		sql.Register(name, nil) // sql.Register's own panic
	}
	sql.Register(name, WrapDriver(d, append([]Option{WithPoolName(name)}, opts...)...))
}

// WrapDriver returns a driver whose connections, checkouts, rows,
// statements and transactions are tracked. It has DriverContext exactly when
// d has it. WrapDriver(nil) returns nil.
func WrapDriver(d driver.Driver, opts ...Option) driver.Driver {
	if d == nil {
		return nil
	}
	return wrapDriverCfg(d, newConfig(opts))
}

func wrapDriverCfg(d driver.Driver, cfg *config) driver.Driver {
	var mask uint
	if _, ok := d.(driver.DriverContext); ok {
		mask |= 1
	}
	cfg.initOtel(d, nil)
	return wrapDrv(drv{d: d, cfg: cfg}, mask)
}

// WrapConnector returns a connector whose connections, checkouts, rows,
// statements and transactions are tracked. It is an io.Closer exactly when
// c is, and its Driver is c's driver, wrapped. WrapConnector(nil) returns
// nil.
func WrapConnector(c driver.Connector, opts ...Option) driver.Connector {
	if c == nil {
		return nil
	}
	return wrapConnectorCfg(c, newConfig(opts))
}

func wrapConnectorCfg(c driver.Connector, cfg *config) driver.Connector {
	var mask uint
	if _, ok := c.(interface{ Close() error }); ok {
		mask |= 1
	}
	cfg.initOtel(nil, c)
	return wrapConnector(connector{c: c, cfg: cfg}, mask)
}

// Stats are what sqlpool did to a database's pool.
type Stats struct {
	// Evicted is how many pooled connections were discarded at checkout
	// because their server had closed them (see WithEviction).
	Evicted uint64
}

// StatsOf returns the Stats of db, opened by Open, OpenDB or a driver from
// WrapDriver or Register; ok is false for a database sqlpool does not wrap.
func StatsOf(db *sql.DB) (s Stats, ok bool) {
	w, ok := db.Driver().(interface{ sqlpoolConfig() *config })
	if !ok {
		return Stats{}, false
	}
	return Stats{Evicted: w.sqlpoolConfig().evicted.Load()}, true
}

// Unwrap returns the driver's own object under a sqlpool wrapper: a
// connection, statement, rows, transaction, connector or driver. Code that
// reaches the driver through sql.Conn.Raw gets the wrapper, and calls Unwrap
// to type-assert the driver's connection:
//
//	conn.Raw(func(dc any) error {
//		pc := sqlpool.Unwrap(dc).(*stdlib.Conn)
//		...
//	})
//
// Anything else is returned as it is.
func Unwrap(v any) any {
	for range 16 { // a bound, should a driver wrap sqlpool wrappers in turn
		w, ok := v.(interface{ driverObject() any })
		if !ok {
			return v
		}
		v = w.driverObject()
	}
	return v
}

// Dialer adapts a dial function, such as a tracker's WrapDialer, to drivers
// that take a dialer object rather than a function: lib/pq's
// Connector.Dialer takes a Dialer through its Dial, DialTimeout and
// DialContext methods.
//
//	c, _ := pq.NewConnector(dsn)
//	c.Dialer(sqlpool.Dialer(tr.WrapDialer(nil)))
//	db := sqlpool.OpenDB(c, sqlpool.WithTracker(tr))
type Dialer tracker.DialFunc

// DialContext dials with the context, which links the connection to the
// driver connection being opened.
func (d Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil {
		return nil, errors.New("connleak/sqlpool: nil Dialer")
	}
	return d(ctx, network, addr)
}

// Dial dials without a deadline.
func (d Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialTimeout dials within timeout.
func (d Dialer) DialTimeout(network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}

// dsnConnector is the connector of a driver without DriverContext, as
// database/sql makes one for sql.Open.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }
