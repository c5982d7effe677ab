package echo_test

import (
	"context"
	"flag"
	"net"
	"testing"

	"github.com/connleak/connleak/examples/echo"
	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var leakDemo = flag.Bool("leakdemo", false, "run TestLeakDemo, which fails on purpose to show a leak report")

// The package-level form: after all tests, whatever is still open in
// tracker.Default(), and any goroutine still running, fails the package.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, testutil.WithGoroutines())
}

// startServer serves on a loopback listener wrapped by tr, and stops the
// server when the test ends (before NewTracker's verification, which was
// registered earlier).
func startServer(t *testing.T, tr *tracker.Tracker) *echo.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := echo.Serve(tr.WrapListener(ln))
	t.Cleanup(func() { srv.Close() })
	return srv
}

// The per-test form: NewTracker gives the test its own tracker, closed and
// verified when the test ends. The code under test gets the tracker's
// WrapListener and WrapDialer.
func TestEcho(t *testing.T) {
	tr := testutil.NewTracker(t)
	srv := startServer(t, tr)
	c := echo.NewClient(tr.WrapDialer(nil), srv.Addr())

	got, err := c.Echo(context.Background(), "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", got)
}

// NewTracker is the form for parallel tests: each has its own tracker, so
// one test's leak never fails another.
func TestEchoParallel(t *testing.T) {
	for _, msg := range []string{"a", "bb", "ccc", "dddd"} {
		t.Run(msg, func(t *testing.T) {
			t.Parallel()
			tr := testutil.NewTracker(t)
			srv := startServer(t, tr)
			got, err := echo.NewClient(tr.WrapDialer(nil), srv.Addr()).Echo(context.Background(), msg)
			require.NoError(t, err)
			assert.Equal(t, msg, got)
		})
	}
}

// The goleak-style form: defer VerifyNone at the top of the test, checking
// tracker.Default(). IgnoreCurrent leaves out what was open before the test.
func TestEchoVerifyNone(t *testing.T) {
	defer testutil.VerifyNone(t, testutil.IgnoreCurrent())
	tr := tracker.Default()
	srv := startServer(t, tr)
	defer srv.Close() // deferred calls run before VerifyNone, cleanups after

	_, err := echo.NewClient(tr.WrapDialer(nil), srv.Addr()).Echo(context.Background(), "hi")
	require.NoError(t, err)
}

// Everything in one report: resources, goroutines (goleak, with its own
// options), and sockets that no wrapper saw (the process sweep).
func TestEchoEverything(t *testing.T) {
	defer testutil.VerifyNone(t,
		testutil.IgnoreCurrent(),
		testutil.WithGoroutines(),
		testutil.WithProcessSockets(),
	)
	tr := tracker.Default()
	srv := startServer(t, tr)
	defer srv.Close()

	_, err := echo.NewClient(tr.WrapDialer(nil), srv.Addr()).Echo(context.Background(), "all")
	require.NoError(t, err)
}

// A testify user passes the same value: VerifyNone accepts what assert and
// require accept.
func TestEchoTestify(t *testing.T) {
	var tt require.TestingT = t
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	defer testutil.VerifyNone(tt, testutil.WithTracker(tr))

	srv := startServer(t, tr)
	defer srv.Close()
	_, err := echo.NewClient(tr.WrapDialer(nil), srv.Addr()).Echo(context.Background(), "x")
	require.NoError(tt, err)
}

// The bug, caught. This test fails on purpose, so it runs only when asked:
//
//	go test ./examples/echo -run TestLeakDemo -args -leakdemo
//
// The failure names this test's line that called Echo, then the client's
// line that dialed, and shows the connection in CLOSE_WAIT: the server
// closed its side when the test ended, the client never did.
func TestLeakDemo(t *testing.T) {
	if !*leakDemo {
		t.Skip("fails on purpose to show a leak report; run with -args -leakdemo")
	}
	tr := testutil.NewTracker(t)
	srv := startServer(t, tr)
	c := echo.NewClient(tr.WrapDialer(nil), srv.Addr())

	for range 2 {
		_, err := c.Echo(context.Background(), "") // the error path that leaks
		assert.ErrorIs(t, err, echo.ErrEmpty)
	}
	_, err := c.Echo(context.Background(), "fine")
	assert.NoError(t, err)
}
