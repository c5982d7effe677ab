package main

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connleak/connleak/sqlpool"
	"github.com/connleak/connleak/tracker"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The example's claim, checked: each early return leaves Rows, and the
// connection they keep out of the pool, reported at the line that ran the
// query, on SQLite and on PostgreSQL, where the connection's socket leads
// with that line too.
func TestSQLRowsExample(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		check(t, "")
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgDSN(t)
		defer goleak.VerifyNone(t)
		check(t, dsn)
	})
}

func check(t *testing.T, dsn string) {
	var out strings.Builder
	res, err := run(&out, dsn)
	require.NoError(t, err, out.String())
	t.Log(out.String())

	line := markerLine(t, "connleak: the leak's line")
	kinds := map[tracker.Kind]int{}
	for _, l := range res.leaks {
		kinds[l.Kind]++
		assert.Equal(t, tracker.ReasonHeldTooLong, l.Reason)
		assertSite(t, l.Resource, line)
	}
	assert.Equal(t, map[tracker.Kind]int{sqlpool.KindCheckout: 2}, kinds,
		"a checkout, carrying the Rows, for each of the two early returns")
	assert.Contains(t, out.String(), "main.go:"+strconv.Itoa(line)+")")

	var sockets int
	for _, r := range res.open {
		switch r.Kind {
		case sqlpool.KindRows, sqlpool.KindCheckout:
			assertSite(t, r, line)
		case tracker.KindConn:
			sockets++
			require.NotNil(t, r.HeldBy, "the socket is linked to its connection: %v", r)
			assert.Equal(t, sqlpool.KindCheckout, r.HeldBy.Kind)
			assertSite(t, r, line)
		}
	}
	if dsn == "" {
		assert.Zero(t, sockets, "SQLite has no socket")
	} else {
		assert.Equal(t, 2, sockets, "the sockets of the two connections the Rows hold")
	}
	if dsn != "" {
		cfg, err := pgx.ParseConfig(dsn)
		require.NoError(t, err)
		require.NotEmpty(t, cfg.Password, "the DSN carries a password, to check it is never printed")
		assert.NotContains(t, out.String(), cfg.Password)
	}
}

func assertSite(t *testing.T, r tracker.Resource, line int) {
	t.Helper()
	site := r.Site()
	assert.True(t, strings.HasSuffix(site.Function, "sqlrows.firstOverLimit"), "%v", site)
	assert.True(t, strings.HasSuffix(site.File, "sqlrows/main.go"), "%v", site)
	assert.Equal(t, line, site.Line, "%v\n%s", r, r.StackReport())
}

// pgDSN returns the PostgreSQL DSN of the tests, skipping (or failing, in
// CI) when the server does not answer. The default carries a password,
// which the local server's trust authentication ignores, so that the test
// can check it is never printed.
func pgDSN(t *testing.T) string {
	dsn := os.Getenv("CONNLEAK_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres:sqlrows-Pa55word@127.0.0.1:5432/test?sslmode=disable"
	}
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err, "CONNLEAK_PG_DSN does not parse")
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		msg := "PostgreSQL not reachable at " + addr + " (set CONNLEAK_PG_DSN): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c.Close()
	return dsn
}

// markerLine finds the line of main.go that carries marker.
func markerLine(t *testing.T, marker string) int {
	f, err := os.Open("main.go")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), marker) && !strings.Contains(sc.Text(), "markerLine") {
			return n
		}
	}
	t.Fatalf("marker %q not found in main.go", marker)
	return 0
}
