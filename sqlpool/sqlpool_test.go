package sqlpool_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// here is the line of its caller's previous line: the statement under test.
func here() int {
	_, _, line, _ := runtime.Caller(1)
	return line - 1
}

// openOf returns tr's open resources of kind k.
func openOf(tr *tracker.Tracker, k tracker.Kind) []tracker.Resource {
	var out []tracker.Resource
	for _, r := range tr.Open() {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

func assertSite(t *testing.T, r tracker.Resource, line int) {
	t.Helper()
	s := r.Site()
	assert.True(t, strings.HasSuffix(s.File, "sqlpool_test.go"), "site %v", s)
	assert.Equal(t, line, s.Line, "site %v\n%s", s, r.StackReport())
}

// Rows not closed, a transaction not finished and a DB.Conn not closed are
// each open at the line that made them, and a connection's socket leads with
// the line that checked it out; closing them ends their tracking. Rows of a
// query that took the connection from the pool are carried by its checkout,
// open at the query's line; rows of a query in a transaction are tracked
// on their own.
func TestLeaksNameTheLine(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			db := b.open(t, tr)
			db.SetMaxOpenConns(3)
			ctx := context.Background()

			rows, err := db.QueryContext(ctx, "SELECT 1")
			rowsLine := here()
			require.NoError(t, err)
			tx, err := db.BeginTx(ctx, nil)
			txLine := here()
			require.NoError(t, err)
			txRows, err := tx.QueryContext(ctx, "SELECT 1")
			txRowsLine := here()
			require.NoError(t, err)
			conn, err := db.Conn(ctx)
			connLine := here()
			require.NoError(t, err)
			require.NoError(t, conn.PingContext(ctx))

			rs := openOf(tr, sqlpool.KindRows)
			require.Len(t, rs, 1)
			assertSite(t, rs[0], txRowsLine)
			txs := openOf(tr, sqlpool.KindTx)
			require.Len(t, txs, 1)
			assertSite(t, txs[0], txLine)
			outs := openOf(tr, sqlpool.KindCheckout)
			require.Len(t, outs, 3)
			lines := map[int]bool{}
			for _, o := range outs {
				lines[o.Site().Line] = true
			}
			assert.Equal(t, map[int]bool{rowsLine: true, txLine: true, connLine: true}, lines)
			if b.network {
				socks := openOf(tr, tracker.KindConn)
				require.Len(t, socks, 3)
				held := map[int]bool{}
				for _, s := range socks {
					require.NotNil(t, s.HeldBy, "socket not linked to its connection")
					assert.Equal(t, sqlpool.KindCheckout, s.HeldBy.Kind)
					held[s.Site().Line] = true
				}
				assert.Equal(t, lines, held)
			}

			require.NoError(t, rows.Close())
			require.NoError(t, tx.Rollback()) // closes txRows
			assert.ErrorIs(t, txRows.Err(), context.Canceled)
			require.NoError(t, conn.Close())
			assert.Empty(t, openOf(tr, sqlpool.KindRows))
			assert.Empty(t, openOf(tr, sqlpool.KindTx))
			assert.Empty(t, openOf(tr, sqlpool.KindCheckout))
			for _, c := range openOf(tr, sqlpool.KindConn) {
				assert.True(t, c.Idle)
			}
		})
	}
}

// A connection that database/sql opens on its own goroutine, for a query
// waiting for one after another connection was discarded, is checked out at
// the waiting query's line, not at database/sql's: the rows it leaves open
// name that line. Back in the pool it is idle.
func TestConnectionOpenedByThePoolNamesItsQuery(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			db := b.open(t, tr)
			db.SetMaxOpenConns(1)
			ctx := context.Background()
			first, err := db.Conn(ctx)
			require.NoError(t, err)

			type result struct {
				rows *sql.Rows
				line int
				err  error
			}
			got := make(chan result, 1)
			go func() {
				rows, err := db.QueryContext(ctx, "SELECT 1")
				got <- result{rows, here(), err}
			}()
			require.Eventually(t, func() bool { return db.Stats().WaitCount > 0 },
				5*time.Second, time.Millisecond, "the query never waited for the pool")
			// Discarded, the connection makes database/sql open another
			// for the waiting query.
			require.ErrorIs(t, first.Raw(func(any) error { return driver.ErrBadConn }), driver.ErrBadConn)
			var r result
			select {
			case r = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting query never got a connection")
			}
			require.NoError(t, r.err)

			outs := openOf(tr, sqlpool.KindCheckout)
			require.Len(t, outs, 1)
			assertSite(t, outs[0], r.line)
			require.NoError(t, r.rows.Close())
			assert.Empty(t, openOf(tr, sqlpool.KindCheckout))
			conns := openOf(tr, sqlpool.KindConn)
			require.Len(t, conns, 1)
			assert.True(t, conns[0].Idle)
		})
	}
}

// A connection held past the checkout hold limit is reported with the line
// that took it; Rows read to their end are not a leak.
func TestCheckoutHoldLimit(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tr, log := newTracker(t)
			db := b.open(t, tr, sqlpool.WithCheckoutHoldLimit(30*time.Millisecond))
			ctx := context.Background()
			rows, err := db.QueryContext(ctx, "SELECT 1")
			require.NoError(t, err)
			for rows.Next() {
			}
			conn, err := db.Conn(ctx)
			line := here()
			require.NoError(t, err)
			defer conn.Close()
			deadline := time.Now().Add(3 * time.Second)
			for len(log.all()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				tr.Poll()
			}
			leaks := log.all()
			require.Len(t, leaks, 1)
			assert.Equal(t, sqlpool.KindCheckout, leaks[0].Kind)
			assert.Equal(t, tracker.ReasonHeldTooLong, leaks[0].Reason)
			assertSite(t, leaks[0].Resource, line)
			assert.Empty(t, openOf(tr, sqlpool.KindRows))
		})
	}
}

// waitFor polls tr until cond holds, or fails after a few seconds.
func waitFor(t *testing.T, tr *tracker.Tracker, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.Poll()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// session runs b's session query on db's one connection.
func session(t *testing.T, b backend, db *sql.DB) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.QueryRow(b.sessionQuery).Scan(&id))
	return id
}

// A server that kills an idle pooled connection is reported with
// ReasonIdleInPool, at Info and never as a leak; with eviction on, the next
// query succeeds on a fresh connection and no dead socket is left; no log
// or report shows the DSN's password.
func TestKilledIdleConnectionIsEvicted(t *testing.T) {
	for _, b := range backends {
		if !b.network {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			var logs bytes.Buffer
			tr, log := newTracker(t, tracker.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			db := b.open(t, tr)
			id := session(t, b, db)
			b.kill(t, id)
			waitFor(t, tr, "the idle connection's report", func() bool { return len(log.all()) > 0 })
			leaks := log.all()
			require.Len(t, leaks, 1)
			assert.Equal(t, tracker.ReasonIdleInPool, leaks[0].Reason)
			assert.Equal(t, tracker.KindConn, leaks[0].Kind)
			assert.NotContains(t, logs.String(), "level=WARN")

			assert.NotEqual(t, id, session(t, b, db), "the next query ran on the dead connection")
			// pgx and mysql find the dead connection in their own
			// ResetSession, which runs first; lib/pq does not.
			st, ok := sqlpool.StatsOf(db)
			require.True(t, ok)
			if b.name == "pq" {
				assert.Equal(t, uint64(1), st.Evicted)
			}
			assert.LessOrEqual(t, st.Evicted, uint64(1))
			tr.Poll()
			for _, c := range openOf(tr, tracker.KindConn) {
				assert.Equal(t, tracker.StateActive, c.State, "a dead socket is left: %v", c)
			}
			for _, l := range tr.Leaks() {
				assert.NotEqual(t, tracker.ReasonPeerClosed, l.Reason, "%v", l)
			}

			var text strings.Builder
			for _, l := range append(log.all(), tr.Leaks()...) {
				text.WriteString(l.String())
			}
			for _, r := range tr.Open() {
				text.WriteString(r.String() + r.StackReport())
			}
			text.WriteString(logs.String())
			assert.NotContains(t, text.String(), secret)
		})
	}
}

// With eviction off, the first query after the kill does what it does on
// the driver alone: succeed or fail alike.
func TestEvictionOffBehavesAsTheDriver(t *testing.T) {
	for _, b := range backends {
		if !b.network {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			// Sockets of the process in CLOSE_WAIT, tracked or not: the
			// driver alone dials its own.
			closeWaits := func() int {
				socks, err := tr.ProcessSockets()
				require.NoError(t, err)
				n := 0
				for _, s := range socks {
					if s.State == "CLOSE_WAIT" {
						n++
					}
				}
				return n
			}
			outcome := func(db *sql.DB) (bool, error) {
				id := session(t, b, db)
				before := closeWaits()
				b.kill(t, id)
				require.Eventually(t, func() bool { return closeWaits() > before }, 5*time.Second,
					5*time.Millisecond, "the server's close never reached the client")
				var x int64
				err := db.QueryRow(b.sessionQuery).Scan(&x)
				return err == nil, err
			}
			b.need(t)
			raw := sql.OpenDB(b.connector(t, nil))
			raw.SetMaxOpenConns(1)
			defer raw.Close()
			wrapped := b.open(t, tr, sqlpool.WithEviction(false))
			rawOK, rawErr := outcome(raw)
			wrappedOK, wrappedErr := outcome(wrapped)
			assert.Equal(t, rawOK, wrappedOK, "driver: %v, sqlpool: %v", rawErr, wrappedErr)
			st, _ := sqlpool.StatsOf(wrapped)
			assert.Zero(t, st.Evicted)
		})
	}
}

// waitDead waits, without a poll, until the kernel says a socket tr tracks
// is in CLOSE_WAIT: the server's FIN has arrived.
func waitDead(t *testing.T, tr *tracker.Tracker) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		socks, err := tr.ProcessSockets()
		require.NoError(t, err)
		for _, s := range socks {
			if s.Tracked && s.State == "CLOSE_WAIT" {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "the server's close never reached the socket")
		time.Sleep(5 * time.Millisecond)
	}
}

// A killed idle connection evicted at the next checkout, before any poll
// saw it die, is still reported with ReasonIdleInPool at Info by the next
// poll, naming the pooled connection that held it, and never as a leak.
func TestEvictionIsReportedWithoutAPoll(t *testing.T) {
	for _, b := range backends {
		if !b.network {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			var logs bytes.Buffer
			tr, log := newTracker(t, tracker.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			db := b.open(t, tr)
			id := session(t, b, db)
			b.kill(t, id)
			waitDead(t, tr)
			assert.NotEqual(t, id, session(t, b, db), "the next query ran on the dead connection")
			assert.Empty(t, log.all(), "reported on the query's goroutine")
			tr.Poll()
			tr.Poll()
			leaks := log.all()
			require.Len(t, leaks, 1)
			l := leaks[0]
			assert.Equal(t, tracker.ReasonIdleInPool, l.Reason)
			assert.Equal(t, tracker.KindConn, l.Kind)
			require.NotNil(t, l.HeldBy)
			assert.Equal(t, sqlpool.KindConn, l.HeldBy.Kind)
			assert.True(t, l.HeldBy.Idle)
			assert.Contains(t, logs.String(), "pooled connection closed by its peer while idle")
			assert.NotContains(t, logs.String(), "level=WARN")
			assert.NotContains(t, l.String()+logs.String(), secret)
			st, _ := sqlpool.StatsOf(db)
			if b.name == "pq" { // pgx and mysql find it dead in their own ResetSession
				assert.Equal(t, uint64(1), st.Evicted)
			}
		})
	}
}
