// Package testutil fails a test that leaks sockets, other tracked resources
// (anything given to a tracker's Track), or goroutines, and names the line of
// the test that opened what leaked.
//
// It works like go.uber.org/goleak, and adds what goleak cannot do:
// resources as well as goroutines, the stack of the line that opened each
// leaked thing, parallel tests that do not blame each other, and one total
// timeout for everything it waits on.
//
//	func TestClient(t *testing.T) {
//		tr := testutil.NewTracker(t) // closed and verified when the test ends
//		srv := echo.Serve(tr.WrapListener(ln))
//		c := echo.NewClient(tr.WrapDialer(nil), srv.Addr())
//		c.Echo(ctx, "") // an error path that never closes its connection
//	}
//
// fails with one message: the test's own line first, then the line of the
// code under test that dialed, the connection's addresses and kernel state,
// and the whole open-site stack:
//
//	connleak: TestClient left 1 resource still open (waited 501ms for them to close)
//
//	conn opened at client_test.go:17 in TestClient
//	    conn tcp 127.0.0.1:39156 -> 127.0.0.1:36913 (CLOSE_WAIT), open for 503ms
//	  through echo.go:106 in (*Client).Echo
//	  opened at:
//	    example.com/echo.(*Client).Echo
//	    	/src/echo/echo.go:106
//	    example.com/echo_test.TestClient
//	    	/src/echo/client_test.go:17
//	    ...
//
// A client library that dials on a goroutine of its own (an http.Transport,
// pgxpool, go-redis's pool) leaves no line of the test in the stack. The
// report then names the library instead of passing off one of its frames as
// the test's line, and still shows the stack:
//
//	conn opened on a net/http goroutine: no line of the program is in its stack
//
// The three forms:
//
//   - NewTracker(t): a tracker for one test, closed and verified in
//     t.Cleanup. The code under test must be given it (WrapDialer,
//     WrapListener, WrapConn or Track). This is the form for tests that run in parallel.
//   - defer VerifyNone(t): verifies tracker.Default() (or WithTracker's) at
//     the end of a test; IgnoreCurrent leaves out what was open before.
//   - VerifyTestMain(m): verifies after all of a package's tests, and sets
//     the exit code.
//
// A connection that a pool integration marks idle in its pool
// (tracker.Handle.SetIdle) is the pool's to keep or close, and is left out,
// whether or not its server has closed it meanwhile: the tracker reports
// that case with tracker.ReasonIdleInPool, which never fails a test.
//
// WithGoroutines adds goleak's goroutine check to the same report, and
// WithProcessSockets adds the sockets of the process that no wrapper saw
// (Linux), such as one opened by a plain net.Dial.
//
// # Parallel tests
//
// A tracker made by NewTracker belongs to one test, so what it reports is
// that test's. On the shared tracker.Default(), VerifyNone leaves to other
// tests the resources whose open-site stack runs through another top-level
// test function; a resource opened on a goroutine that no test function
// started (a server's accept loop, a pool's dialer) carries no test in its
// stack and is reported by whichever test verifies first. Subtests of one
// test cannot be told apart this way. The goroutine check and the process
// sweep are process-wide, as goleak is: under t.Parallel, use them in
// VerifyTestMain.
//
// # Using goleak directly too
//
// VerifyNone and VerifyTestMain without WithTracker start tracker.Default(),
// whose poller goroutine runs for the life of the process; with WithTracker,
// and under NewTracker, a verification that passes does not, and neither does
// IgnoreCurrent. testutil's own
// goroutine check never reports it; a direct goleak.VerifyNone or
// goleak.VerifyTestMain in the same package needs IgnoreDefaultPoller:
//
//	defer goleak.VerifyNone(t, testutil.IgnoreDefaultPoller())
package testutil
