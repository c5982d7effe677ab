package sqlpool_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"
)

// secret is the password the PostgreSQL DSNs carry: trust authentication
// accepts any, and no report or log may show it.
const secret = "s3cret-Pa55word"

func pgDSN() string {
	if v := os.Getenv("CONNLEAK_PG_DSN"); v != "" {
		return v
	}
	return "postgres://postgres:" + secret + "@127.0.0.1:5432/test?sslmode=disable"
}

func mysqlDSN() string {
	if v := os.Getenv("CONNLEAK_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// need skips the test when the server at addr does not answer, or fails
// it when CI is set.
func need(t testing.TB, envVar, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := "server not reachable at " + addr + " (set " + envVar + "): " + err.Error()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// leakLog collects a tracker's events.
type leakLog struct {
	mu    sync.Mutex
	leaks []tracker.Leak
}

func (l *leakLog) add(x tracker.Leak) { l.mu.Lock(); l.leaks = append(l.leaks, x); l.mu.Unlock() }

func (l *leakLog) all() []tracker.Leak {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tracker.Leak(nil), l.leaks...)
}

// newTracker makes a tracker that polls when asked, with no grace.
func newTracker(t testing.TB, opts ...tracker.Option) (*tracker.Tracker, *leakLog) {
	log := &leakLog{}
	base := []tracker.Option{tracker.WithPollInterval(time.Hour), tracker.WithGracePeriod(0),
		tracker.WithLogger(nil), tracker.WithOnLeak(log.add)}
	tr := tracker.New(append(base, opts...)...)
	t.Cleanup(func() { tr.Close() })
	return tr, log
}

// backend is one of the databases the tests run on.
type backend struct {
	name string
	// connector makes the driver's own connector, dialing with dial
	// (nil: the driver's own dialer).
	connector func(t testing.TB, dial tracker.DialFunc) driver.Connector
	// session returns the server's id of the session db's one connection
	// runs, and kill ends that session from another connection.
	sessionQuery string
	kill         func(t testing.TB, id int64)
	network      bool
}

func pgConnector(t testing.TB, dial tracker.DialFunc) driver.Connector {
	cfg, err := pgx.ParseConfig(pgDSN())
	require.NoError(t, err)
	if dial != nil {
		cfg.DialFunc = pgconn.DialFunc(dial)
	}
	return stdlib.GetConnector(*cfg)
}

func pqConnector(t testing.TB, dial tracker.DialFunc) driver.Connector {
	c, err := pq.NewConnector(pgDSN())
	require.NoError(t, err)
	if dial != nil {
		c.Dialer(sqlpool.Dialer(dial))
	}
	return c
}

func mysqlConnector(t testing.TB, dial tracker.DialFunc) driver.Connector {
	cfg, err := mysql.ParseDSN(mysqlDSN())
	require.NoError(t, err)
	if dial != nil {
		cfg.DialFunc = dial
	}
	c, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	return c
}

// sqliteConnector opens one shared in-memory database per test.
func sqliteConnector(t testing.TB, _ tracker.DialFunc) driver.Connector {
	return dsnConnector{"file:" + url.PathEscape(t.Name()) + "?mode=memory&cache=shared", &sqlite.Driver{}}
}

type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

func killPG(t testing.TB, id int64) {
	db := sql.OpenDB(pgConnector(t, nil))
	defer db.Close()
	var ok bool
	require.NoError(t, db.QueryRow("SELECT pg_terminate_backend($1)", id).Scan(&ok))
	require.True(t, ok)
}

func killMySQL(t testing.TB, id int64) {
	db := sql.OpenDB(mysqlConnector(t, nil))
	defer db.Close()
	_, err := db.Exec("KILL ?", id)
	require.NoError(t, err)
}

var backends = []backend{
	{name: "pgx", connector: pgConnector, sessionQuery: "SELECT pg_backend_pid()", kill: killPG, network: true},
	{name: "pq", connector: pqConnector, sessionQuery: "SELECT pg_backend_pid()", kill: killPG, network: true},
	{name: "mysql", connector: mysqlConnector, sessionQuery: "SELECT CONNECTION_ID()", kill: killMySQL, network: true},
	{name: "sqlite", connector: sqliteConnector},
}

func (b backend) need(t testing.TB) {
	t.Helper()
	switch b.name {
	case "pgx", "pq":
		cfg, err := pgx.ParseConfig(pgDSN())
		require.NoError(t, err)
		need(t, "CONNLEAK_PG_DSN", net.JoinHostPort(cfg.Host, itoa(int(cfg.Port))))
	case "mysql":
		cfg, err := mysql.ParseDSN(mysqlDSN())
		require.NoError(t, err)
		need(t, "CONNLEAK_MYSQL_DSN", cfg.Addr)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// open opens b through sqlpool on tr, with the tracker's dialer, and a
// pool of one connection.
func (b backend) open(t testing.TB, tr *tracker.Tracker, opts ...sqlpool.Option) *sql.DB {
	b.need(t)
	db := sqlpool.OpenDB(b.connector(t, tr.WrapDialer(nil)), append([]sqlpool.Option{sqlpool.WithTracker(tr)}, opts...)...)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}
