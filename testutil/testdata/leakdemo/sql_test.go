package leakdemo

import (
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// sqlpool on SQLite, and Rows never closed: the test fails, and the report
// names the line that ran the query.
func TestLeakSQLRows(t *testing.T) {
	tr := testutil.NewTracker(t)
	db, err := sqlpool.Open("sqlite", filepath.Join(t.TempDir(), "demo.db"), sqlpool.WithTracker(tr))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT 1 UNION ALL SELECT 2") // LINE:sql-rows
	if err != nil {
		t.Fatal(err)
	}
	rows.Next() // the first row is enough: the rows are never closed
	hold(rows)
}

// The same query with its Rows closed passes, though the database is left
// open: its idle connection is the pool's.
func TestSQLRowsClosed(t *testing.T) {
	tr := testutil.NewTracker(t)
	db, err := sqlpool.Open("sqlite", filepath.Join(t.TempDir(), "demo.db"), sqlpool.WithTracker(tr))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT 1 UNION ALL SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	hold(db)
}

// pgDSN is the PostgreSQL the SQL tests use.
func pgDSN() string {
	if v := os.Getenv("CONNLEAK_PG_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// A pool whose server ended its idle connection (pg_terminate_backend) is
// the pool's hygiene, not the test's leak: the test passes, though the dead
// connection is still in the pool when the tracker is verified.
func TestSQLIdleKilled(t *testing.T) {
	cfg, err := pgx.ParseConfig(pgDSN())
	if err != nil {
		t.Fatal("CONNLEAK_PG_DSN: ", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Skip("PostgreSQL not reachable at " + addr + " (set CONNLEAK_PG_DSN): " + err.Error())
	} else {
		c.Close()
	}

	// Registered before NewTracker, this cleanup runs after its
	// verification: the pool still holds the dead connection then.
	var db *sql.DB
	t.Cleanup(func() {
		if db != nil {
			db.Close()
		}
	})
	tr := testutil.NewTracker(t)
	cfg.DialFunc = pgconn.DialFunc(tr.WrapDialer(nil))
	db = sqlpool.OpenDB(stdlib.GetConnector(*cfg), sqlpool.WithTracker(tr))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	var pid int64
	if err := db.QueryRow("SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}

	// The server ends the idle pooled connection, asked from a connection
	// of its own.
	admin, err := pgx.Connect(context.Background(), pgDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, ok, err)
	}

	// The tracker sees the close, and reports it as the pool's.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.Poll()
		if idle := idleInPool(tr.Leaks()); idle != nil {
			t.Logf("reported: %s", idle.Resource)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's close of the idle connection was never reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dead int
	for _, r := range tr.Open() {
		if r.Kind == tracker.KindConn && r.State == tracker.StatePeerClosed {
			dead++
		}
	}
	if dead != 1 {
		t.Fatalf("%d dead sockets open, want the pool's one: the check below would prove nothing", dead)
	}
	t.Log("the dead connection is still in the pool")
}

// idleInPool returns the first leak reported with ReasonIdleInPool.
func idleInPool(leaks []tracker.Leak) *tracker.Leak {
	for i := range leaks {
		if leaks[i].Reason == tracker.ReasonIdleInPool {
			return &leaks[i]
		}
	}
	return nil
}
