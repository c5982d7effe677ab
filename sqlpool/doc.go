// Package sqlpool wraps database/sql drivers so that a tracker names the
// line of the program that leaked a query's Rows, a transaction, a prepared
// statement or a connection taken with DB.Conn, and tells a pooled
// connection that its server closed while it sat idle (the pool's hygiene)
// from one the program holds.
//
//	tr := tracker.New()
//	db, err := sqlpool.Open("sqlite", "file:app.db", sqlpool.WithTracker(tr))
//
// Each driver connection is tracked from its Connect to its Close (kind
// KindConn); each checkout, from the line that took the connection out of
// the pool (a query, a transaction, DB.Conn) to its return (KindCheckout),
// which for a query such as DB.Query is when its Rows are closed or read to
// the end; the Rows of each later query on a checked-out connection (in a
// transaction, on a DB.Conn) to their Close or last row (KindRows); each
// prepared statement to its Close (KindStmt); each transaction to its
// Commit or Rollback (KindTx). Reports name the program's line, not
// database/sql's. A connection that database/sql opens on a goroutine of
// its own, for callers waiting while the pool was full, starts idle, and
// its checkout at its first statement's line: a DB.Conn given such a
// connection is tracked from its first statement.
//
// A query costs the program one stack capture and no allocation: each
// connection re-arms one tracked checkout (tracker.Handle.Reopen), and the
// Rows of a query that took the connection are carried by that checkout
// instead of being tracked on their own.
// Hold limits (WithCheckoutHoldLimit, WithRowsHoldLimit, WithTxHoldLimit)
// report what is held too long, as HikariCP's leakDetectionThreshold does.
//
// # Sockets
//
// Give the driver the tracker's own dialer, and sqlpool the same tracker:
// the socket dialed for each driver connection is then tracked and linked
// to it. While the connection is checked out, the socket's reports lead with
// the line that took it; while it is idle in the pool, a server closing it
// (an idle timeout, a restart, pg_terminate_backend, KILL) is reported with
// tracker.ReasonIdleInPool at Info level, never as a leak, and the next
// checkout discards it (WithEviction). The line to write, per driver:
//
//	// github.com/jackc/pgx/v5/stdlib
//	cfg, _ := pgx.ParseConfig(dsn)
//	cfg.DialFunc = pgconn.DialFunc(tr.WrapDialer(nil))
//	db := sqlpool.OpenDB(stdlib.GetConnector(*cfg), sqlpool.WithTracker(tr))
//
//	// github.com/go-sql-driver/mysql
//	cfg, _ := mysql.ParseDSN(dsn)
//	cfg.DialFunc = tr.WrapDialer(nil)
//	c, _ := mysql.NewConnector(cfg)
//	db := sqlpool.OpenDB(c, sqlpool.WithTracker(tr))
//
//	// github.com/lib/pq
//	c, _ := pq.NewConnector(dsn)
//	c.Dialer(sqlpool.Dialer(tr.WrapDialer(nil)))
//	db := sqlpool.OpenDB(c, sqlpool.WithTracker(tr))
//
// The link is made through the context the connector's Connect passes to
// the dial function, so a driver opened by name without a connector
// (driver.Driver.Open has no context) keeps its sockets unlinked.
//
// # Interfaces
//
// Each wrapper has exactly the optional interfaces of the driver's object
// it wraps (a type assertion on the wrapper succeeds exactly when it
// succeeds on the driver's), with two exceptions on connections:
// driver.SessionResetter and driver.Validator, which are how database/sql
// tells sqlpool that a connection leaves and returns to the pool. See
// the ResetSession and IsValid methods for what they change: nothing a
// program can see, including a transaction's rollback on a canceled
// context. Unwrap returns the driver's own object, for sql.Conn.Raw.
//
// # OpenTelemetry
//
// sqlpool takes its tracer and meter providers from the tracker given by
// WithTracker (tracker.WithTracerProvider, tracker.WithMeterProvider). A
// query, transaction, prepared statement or checkout made with a context
// (QueryContext, BeginTx, PrepareContext, DB.Conn) remembers the span
// active in it, so the leak span of its Rows, Tx, Stmt or checkout, and of
// the connection and socket they hold, links to the span of the request
// that ran it. Every resource, and every socket dialed for the pool's
// connections, carries db.system.name (derived from the driver, or
// WithDBSystem) and db.client.connection.pool.name (WithPoolName).
//
// The pool's metrics follow the semantic conventions, under the scope
// ScopeName: db.client.connection.count by db.client.connection.state
// (idle or used) and db.client.connection.max, both observed when they are
// collected, so that a query pays nothing for them; the maximum is known
// only for databases made by Open or OpenDB. db.client.connection.use_time
// records each checkout's time from checkout to return, with no allocation,
// and nothing at all while no SDK is installed.
//
// Credentials in a data source name are never in a report: sqlpool records
// neither the name nor the statements it runs, and the pool name it derives
// from the name leaves out the user and password.
package sqlpool
