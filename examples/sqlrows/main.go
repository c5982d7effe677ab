// Command sqlrows shows sql.Rows left open on an early return, and
// connleak naming the line that ran the query.
//
// A billing job looks for each customer's first invoice over a limit. The
// function that scans the invoices returns as soon as it finds one, without
// closing its Rows. database/sql cannot give the connection under those Rows
// back to the pool until they are closed or read to their end: each early
// return keeps one connection out of the pool, and once the pool reaches its
// SetMaxOpenConns, queries wait. When the query's context never ends
// (context.Background(), a worker's), no goroutine is left for goleak to
// see either.
//
// Nothing about such Rows is visible from the outside: their socket is
// healthy, so the CLOSE_WAIT watch has nothing to see. What shows them is
// time: sqlpool's checkout hold limit (WithCheckoutHoldLimit) reports a
// connection kept out of the pool longer than the limit, as HikariCP's
// leakDetectionThreshold does, and the checkout of a query's Rows is opened
// at the line that ran the query, so the report names that line.
// A service sets limits well above its slowest legitimate query (seconds to
// minutes); the example sets 200 ms so it finishes quickly. It also prints
// what is still open once the job is done, which is what a test's end
// reports through testutil.
//
// It runs on an embedded SQLite database (modernc.org/sqlite, no cgo) by
// default, and on PostgreSQL through pgx when given a DSN, with -pg or in
// CONNLEAK_PG_DSN; there the driver dials with the tracker's dialer, so the
// connection's socket is tracked too and its report leads with the same
// line. The DSN is never printed.
//
//	go run ./examples/sqlrows
//	go run ./examples/sqlrows -pg 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

func main() {
	// Not the flag's default: flag prints defaults, and a DSN may carry a
	// password.
	pg := flag.String("pg", "", "PostgreSQL DSN (default $CONNLEAK_PG_DSN; empty: embedded SQLite)")
	flag.Parse()
	if *pg == "" {
		*pg = os.Getenv("CONNLEAK_PG_DSN")
	}
	if _, err := run(os.Stdout, *pg); err != nil {
		fmt.Fprintln(os.Stderr, "sqlrows:", err)
		os.Exit(1)
	}
}

// firstOverLimit returns the id of the customer's first invoice above limit
// cents. On that early return its Rows are never closed.
func firstOverLimit(ctx context.Context, db *sql.DB, customer string, limit int64) (int64, bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT id, cents FROM invoices WHERE customer = $1 ORDER BY id", customer) // connleak: the leak's line
	if err != nil {
		return 0, false, err
	}
	for rows.Next() {
		var id, cents int64
		if err := rows.Scan(&id, &cents); err != nil {
			rows.Close()
			return 0, false, err
		}
		if cents > limit {
			return id, true, nil // forgot rows.Close()
		}
	}
	// Next returning false has closed the rows.
	return 0, false, rows.Err()
}

// result is what a run found.
type result struct {
	leaks    []tracker.Leak     // reported by the hold limits
	open     []tracker.Resource // still open when the job was done
	postgres bool
}

var memDBs atomic.Int64

func run(out io.Writer, pgDSN string) (*result, error) {
	// In production keep the default poll interval (1 s) and limits above
	// the slowest legitimate query; the example is in a hurry.
	const holdLimit = 200 * time.Millisecond
	tr := tracker.New(
		tracker.WithPollInterval(20*time.Millisecond),
		tracker.WithLogger(nil), // the example prints its own report
	)
	defer tr.Close()
	opts := []sqlpool.Option{
		sqlpool.WithTracker(tr),
		sqlpool.WithRowsHoldLimit(holdLimit),
		sqlpool.WithCheckoutHoldLimit(holdLimit),
	}

	res := &result{postgres: pgDSN != ""}
	var (
		db       *sql.DB
		teardown = "" // run before the database is closed
	)
	if res.postgres {
		cfg, err := pgx.ParseConfig(pgDSN)
		if err != nil {
			return nil, errors.New("the PostgreSQL DSN does not parse") // pgx's error may quote the DSN
		}
		// A schema of this run's own, first on every connection's search
		// path: runs side by side never see each other's invoices.
		schema := "connleak_sqlrows_" + strconv.Itoa(os.Getpid()) + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		cfg.RuntimeParams["search_path"] = schema
		cfg.DialFunc = pgconn.DialFunc(tr.WrapDialer(nil))
		db = sqlpool.OpenDB(stdlib.GetConnector(*cfg), opts...)
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("PostgreSQL: %w", err)
		}
		teardown = "DROP SCHEMA " + schema + " CASCADE"
		fmt.Fprintln(out, "database: PostgreSQL (pgx)")
	} else {
		// One in-memory database per run, shared by the pool's connections.
		name := "file:sqlrows" + strconv.FormatInt(memDBs.Add(1), 10) + "?mode=memory&cache=shared"
		var err error
		db, err = sqlpool.Open("sqlite", name, opts...)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(out, "database: SQLite (in memory)")
	}
	defer func() {
		if teardown != "" {
			db.Exec(teardown)
		}
		db.Close()
	}()

	if err := load(db); err != nil {
		return nil, err
	}

	// The job's context lives as long as the job. database/sql closes the
	// Rows of a query whose context ends, so canceling it on the way out
	// gives the leaked connections back; a context that never ends (a
	// worker's, context.Background()) never does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, customer := range []string{"acme", "globex", "initech"} {
		id, found, err := firstOverLimit(ctx, db, customer, 50_000)
		switch {
		case err != nil:
			return nil, err
		case found:
			fmt.Fprintf(out, "%s: invoice %d is over the limit\n", customer, id)
		default:
			fmt.Fprintf(out, "%s: no invoice over the limit\n", customer)
		}
	}
	stats := db.Stats()
	fmt.Fprintf(out, "pool: %d connections open, %d in use\n", stats.OpenConnections, stats.InUse)

	// Wait, bounded, for the hold limits to pass and the poller to report:
	// a checkout per early return.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		res.leaks = tr.Leaks()
		if len(res.leaks) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(out, "\nconnleak found %d leaks:\n\n", len(res.leaks))
	for _, g := range tracker.GroupLeaks(res.leaks) {
		fmt.Fprintln(out, g)
	}
	res.open = tr.Open()
	fmt.Fprintf(out, "still open when the job was done (what a test's end reports):\n")
	for _, g := range tracker.GroupResources(res.open) {
		fmt.Fprintf(out, "  %d %s at %s\n", len(g.Resources), g.Kind, g.Site)
		for _, r := range g.Resources {
			fmt.Fprintf(out, "      %s\n", r)
		}
	}
	if len(res.leaks) == 0 {
		return res, errors.New("no leak found")
	}
	return res, nil
}

// load creates the invoices table and fills it.
func load(db *sql.DB) error {
	if _, err := db.Exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, cents INTEGER NOT NULL)"); err != nil {
		return err
	}
	invoices := []struct {
		customer string
		cents    int64
	}{
		{"acme", 12_000}, {"acme", 98_000}, {"acme", 4_500},
		{"globex", 7_000}, {"globex", 31_000},
		{"initech", 64_000}, {"initech", 1_000},
	}
	for i, inv := range invoices {
		if _, err := db.Exec("INSERT INTO invoices (id, customer, cents) VALUES ($1, $2, $3)", i+1, inv.customer, inv.cents); err != nil {
			return err
		}
	}
	return nil
}
