// Package testutil fails a test that leaks sockets, response bodies, SQL
// rows and transactions, or goroutines, and names the line of the test that
// opened what leaked.
//
// It works like go.uber.org/goleak, and adds what goleak cannot do:
// resources as well as goroutines, the stack of the line that opened each
// leaked thing, parallel tests that do not blame each other, and one total
// timeout for everything it waits on.
//
//	func TestClient(t *testing.T) {
//		tr := testutil.NewTracker(t) // verified when the test ends
//		c := client.New(client.WithDialer(tr.WrapDialer(nil)))
//		// ... exercise c; forget to close a connection ...
//	}
//
// fails with
//
//	connleak: TestClient left 1 resource still open (waited 500ms for them to close)
//
//	conn opened at client_test.go:14 in TestClient
//	    conn tcp 127.0.0.1:40112 -> 127.0.0.1:35771, CLOSE_WAIT, open for 503ms
//	  through client.(*Client).connect (client.go:52)
//	  opened at:
//	    ...
//
// The three forms:
//
//   - NewTracker(t): a tracker for one test, closed and verified in
//     t.Cleanup. The code under test must be given it (WrapDialer,
//     WrapListener, or the nethttp and sqlpool WithTracker options). This is
//     the form for tests that run in parallel.
//   - defer VerifyNone(t): verifies tracker.Default() (or WithTracker's) at
//     the end of a test; IgnoreCurrent leaves out what was open before.
//   - VerifyTestMain(m): verifies after all of a package's tests, and sets
//     the exit code.
//
// WithGoroutines adds goleak's goroutine check to the same report, and
// WithProcessSockets adds the sockets of the process that no wrapper saw
// (Linux), such as one opened by a plain net.Dial.
package testutil
