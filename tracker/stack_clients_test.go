package tracker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connleak/connleak/tracker"
)

// These tests hold the headline rule to real clients, which dial on
// goroutines of their own: no line of the program is in such a stack, and a
// report must say whose goroutine it was rather than pass off a library's
// frame as the user's line. Every dialer is the tracker's own DialFunc,
// handed to the client as is: a closure written in this file would put a
// _test.go frame, the user's by the rule, in every stack it dials from.

// The servers these tests use, and the environment variables that point at
// them.
const (
	pgDSNEnv         = "CONNLEAK_PG_DSN"
	pgDSNDefault     = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	redisAddrEnv     = "CONNLEAK_REDIS_ADDR"
	redisAddrDefault = "127.0.0.1:6379"
)

// needServer skips the test when nothing answers at addr, naming the
// variable that sets it. Under CI it fails instead: a server missing there
// would otherwise pass unseen.
func needServer(t *testing.T, what, env, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := what + " not reachable at " + addr + " (set " + env + "): " + err.Error()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newSiteTracker(t *testing.T) *tracker.Tracker {
	t.Helper()
	tr := tracker.New(tracker.WithLogger(nil))
	t.Cleanup(func() { tr.Close() })
	return tr
}

// thisLine is the line of its caller.
func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// waitOpen waits for tr to hold at least n open resources, at most 10 s.
func waitOpen(t *testing.T, tr *tracker.Tracker, n int) []tracker.Resource {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open := tr.Open()
		if len(open) >= n {
			return open
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d resources open after 10 s, want %d", len(open), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// byLocalAddr is the open resource whose local address is addr.
func byLocalAddr(t *testing.T, tr *tracker.Tracker, addr net.Addr) tracker.Resource {
	t.Helper()
	for _, r := range tr.Open() {
		if r.LocalAddr == addr.String() {
			return r
		}
	}
	t.Fatalf("no open resource at %s", addr)
	return tracker.Resource{}
}

// checkWhole fails unless r's stack reaches its goroutine's first frame at
// the default depth: a cut stack could hide the user's line.
func checkWhole(t *testing.T, r tracker.Resource) {
	t.Helper()
	frames := r.Stack.Frames()
	require.NotEmpty(t, frames)
	last := frames[len(frames)-1]
	assert.Equal(t, "runtime.goexit", last.Function,
		"a stack of %d frames cut at the default depth %d:\n%s", len(frames), tracker.DefaultStackDepth, r.Stack)
	t.Logf("%d frames; site: %s\n%s", len(frames), r.Site(), r.Stack)
}

// checkLibrary checks that r, dialed on lib's goroutine, has no user's line
// and that its report says whose goroutine it was.
func checkLibrary(t *testing.T, r tracker.Resource, lib string) {
	t.Helper()
	checkWhole(t, r)
	site := r.Site()
	assert.Equal(t, tracker.Site{Goroutine: lib}, site, "the stack:\n%s", r.Stack)
	assert.NotContains(t, r.Stack.Frames()[0].Function, "connleak/tracker.", "the stack starts at the dial's caller")
	want := "on a " + lib + " goroutine: no line of the program is in its stack"
	assert.Equal(t, want, site.String())
	report := tracker.Leak{Resource: r, Reason: tracker.ReasonPeerClosed}.String()
	assert.Contains(t, report, "\n  "+want+"\n", report)
	for _, f := range r.Stack.Frames() {
		if f.Function != "runtime.goexit" {
			assert.NotContains(t, report, "  at "+f.Function, "a library frame as the headline:\n%s", report)
		}
	}
}

// checkLine checks that r's site is the line of this file given.
func checkLine(t *testing.T, r tracker.Resource, line int) {
	t.Helper()
	checkWhole(t, r)
	site := r.Site()
	assert.Equal(t, "stack_clients_test.go", baseName(site.File), "the stack:\n%s", r.Stack)
	assert.Equal(t, line, site.Line, "the stack:\n%s", r.Stack)
	assert.Empty(t, site.Goroutine)
	report := tracker.Leak{Resource: r, Reason: tracker.ReasonPeerClosed}.String()
	assert.Contains(t, report, "\n  at "+site.Frame.String()+"\n", report)
}

func baseName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

// net/http dials on a goroutine of its own (Transport.dialConnFor), with no
// integration of connleak's: the transport only has the tracker's dialer.
func TestSiteNetHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	tr := newSiteTracker(t)
	transport := &http.Transport{DialContext: tr.WrapDialer(nil)}
	defer transport.CloseIdleConnections()

	resp, err := (&http.Client{Transport: transport}).Get(srv.URL)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()

	open := tr.Open()
	require.Len(t, open, 1, "the keep-alive connection")
	checkLibrary(t, open[0], "net/http")
}

// A call of the tracker's dialer in a helper of the program names the
// helper's line.
func TestSiteHelper(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	tr := newSiteTracker(t)
	c, line, err := dialInHelper(tr, ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	r := byLocalAddr(t, tr, c.LocalAddr())
	checkLine(t, r, line)
	assert.Equal(t, "github.com/connleak/connleak/tracker_test.dialInHelper", r.Site().Function)
	// The stack starts at the dial's caller: no frame of connleak's own
	// is left above it, which the headline rule would hide.
	assert.Equal(t, "github.com/connleak/connleak/tracker_test.dialInHelper", r.Stack.Frames()[0].Function)
}

func dialInHelper(tr *tracker.Tracker, addr string) (net.Conn, int, error) {
	dial := tr.WrapDialer(nil)
	line := thisLine() + 1
	c, err := dial(context.Background(), "tcp", addr)
	return c, line, err
}

// go-redis v9 dials every pooled connection on a goroutine of its own: the
// pool's idle-connection fill (MinIdleConns) and a command that finds the
// pool empty (queuedNewConn) alike. Only a Pub/Sub connection is dialed on
// the caller's goroutine.
func TestSiteGoRedis(t *testing.T) {
	addr := envOr(redisAddrEnv, redisAddrDefault)
	needServer(t, "Redis", redisAddrEnv, addr)
	const goRedis = "github.com/redis/go-redis"

	t.Run("MinIdleConns", func(t *testing.T) {
		tr := newSiteTracker(t)
		rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: tr.WrapDialer(nil), MinIdleConns: 2, PoolSize: 4})
		defer rdb.Close()
		for _, r := range waitOpen(t, tr, 2) {
			checkLibrary(t, r, goRedis)
		}
	})

	t.Run("command", func(t *testing.T) {
		tr := newSiteTracker(t)
		rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: tr.WrapDialer(nil)})
		defer rdb.Close()
		require.NoError(t, rdb.Ping(t.Context()).Err())
		open := tr.Open()
		require.Len(t, open, 1)
		checkLibrary(t, open[0], goRedis)
	})

	t.Run("Subscribe", func(t *testing.T) {
		tr := newSiteTracker(t)
		rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: tr.WrapDialer(nil)})
		defer rdb.Close()
		line := thisLine() + 1
		ps := rdb.Subscribe(t.Context(), "connleak-site-test")
		defer ps.Close()
		_, err := ps.Receive(t.Context())
		require.NoError(t, err)
		open := tr.Open()
		require.Len(t, open, 1)
		checkLine(t, open[0], line)
	})
}

// pgxpool's connections are dialed by puddle's goroutine when Acquire finds
// the pool empty (the constructor runs apart from Acquire, so that a
// cancelled Acquire does not abort it), and by pgxpool's own goroutine when
// it fills the pool up to MinConns. pgx.Connect dials on the caller's.
func TestSitePgx(t *testing.T) {
	dsn := envOr(pgDSNEnv, pgDSNDefault)
	config, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err, pgDSNEnv)
	needServer(t, "PostgreSQL", pgDSNEnv, net.JoinHostPort(config.ConnConfig.Host, strconv.Itoa(int(config.ConnConfig.Port))))

	t.Run("pool", func(t *testing.T) {
		tr := newSiteTracker(t)
		config := config.Copy()
		config.ConnConfig.DialFunc = pgconn.DialFunc(tr.WrapDialer(nil))
		config.MinConns = 2
		config.MaxConns = 4
		pool, err := pgxpool.NewWithConfig(t.Context(), config)
		require.NoError(t, err)
		defer pool.Close()

		deadline := time.Now().Add(10 * time.Second)
		for pool.Stat().IdleConns() < 2 {
			require.True(t, time.Now().Before(deadline), "MinConns: %d idle after 10 s", pool.Stat().IdleConns())
			time.Sleep(5 * time.Millisecond)
		}
		background := map[uint64]bool{}
		for _, r := range tr.Open() {
			background[r.ID] = true
			checkLibrary(t, r, "github.com/jackc/pgx")
		}
		require.Len(t, background, 2)

		var acquired []*pgxpool.Conn
		for range 3 {
			c, err := pool.Acquire(t.Context())
			require.NoError(t, err)
			acquired = append(acquired, c)
		}
		defer func() {
			for _, c := range acquired {
				c.Release()
			}
		}()
		var fresh []tracker.Resource
		for _, r := range tr.Open() {
			if !background[r.ID] {
				fresh = append(fresh, r)
			}
		}
		require.Len(t, fresh, 1, "the third Acquire dials")
		checkLibrary(t, fresh[0], "github.com/jackc/puddle")
	})

	t.Run("Connect", func(t *testing.T) {
		tr := newSiteTracker(t)
		cc := config.ConnConfig.Copy()
		cc.DialFunc = pgconn.DialFunc(tr.WrapDialer(nil))
		line := thisLine() + 1
		conn, err := pgx.ConnectConfig(t.Context(), cc)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		checkLine(t, byLocalAddr(t, tr, conn.PgConn().Conn().LocalAddr()), line)
	})
}
