package testutil

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/connleak/connleak/tracker"
)

// TestingT is what VerifyNone needs from a test: a way to fail it with a
// message. *testing.T and *testing.B satisfy it, and so does every value that
// testify's assert and require packages accept (their TestingT has this
// method), so a testify user passes the same value. When the value also has
// Helper, Name or Logf (as testing.TB does), they are used: Helper keeps
// testutil's frames out of the failure's location, Name lets a shared tracker
// tell this test's resources from those of other tests, and Logf carries
// notes that are not failures.
type TestingT interface {
	Errorf(format string, args ...any)
}

// CleanupT is a TestingT that can run a function when the test ends, as
// *testing.T and *testing.B can. NewTracker needs it.
type CleanupT interface {
	TestingT
	Cleanup(func())
}

// TestingM is what VerifyTestMain needs from a package's tests: *testing.M.
type TestingM interface {
	Run() int
}

type helper interface{ Helper() }
type namer interface{ Name() string }
type logger interface {
	Logf(format string, args ...any)
}

// VerifyNone fails the test if a resource opened through the verified
// tracker (tracker.Default(), or the one given by WithTracker) is still open,
// or was garbage-collected without Close. Use it at the end of a test:
//
//	defer testutil.VerifyNone(t)
//
// Before failing it polls again with backoff for up to the timeout
// (DefaultTimeout; see WithTimeout), since closes are often asynchronous. The
// failure is one message: per leaked resource its kind, addresses, socket
// state (CLOSE_WAIT shown as such) and how long it has been open, grouped by
// open site with a count, each group headed by the test's own file:line and
// followed by the open-site stack. With WithGoroutines and
// WithProcessSockets, leaked goroutines and unwrapped sockets are reported in
// the same message.
//
// On the shared tracker.Default(), resources whose open-site stack runs
// through a different top-level test function (TestOther opened it) are left
// to that test, which keeps serial tests and top-level parallel tests from
// blaming each other; resources opened on goroutines that no test function
// started cannot be told apart, so for parallel tests give each test its own
// tracker with NewTracker.
//
// Invalid options fail the test with a message naming the option; a nil t,
// or a nil *testing.T in t, is reported on standard error. VerifyNone never
// panics.
func VerifyNone(t TestingT, opts ...Option) {
	if isNil(t) {
		fmt.Fprintf(os.Stderr, "connleak/testutil: VerifyNone(%s): no test to report to; nothing was verified\n", nilName(t))
		return
	}
	if h, ok := t.(helper); ok {
		h.Helper()
	}
	cfg := newConfig(opts)
	s := scope{name: testName(t), attribute: true}
	if !cfg.trackerSet {
		cfg.tracker = tracker.Default()
	}
	verifyTest(t, cfg, s)
}

// NewTracker returns a new tracker bound to the test t: give it to the code
// under test (its WrapDialer, WrapListener, WrapConn or Track). When the test ends, t.Cleanup closes the tracker
// (stopping its poller goroutine) and then verifies it as VerifyNone does,
// with opts; everything the tracker saw belongs to this test, so tests that
// run in parallel, each with its own tracker, never blame each other.
//
// The tracker logs nothing (the test failure is the report) and polls every
// second. WithTracker among opts is an error. A nil t, or a nil *testing.T
// in t, is reported on standard error, and the tracker returned is then not
// verified.
func NewTracker(t CleanupT, opts ...Option) *tracker.Tracker {
	tr := tracker.New(tracker.WithLogger(nil))
	if isNil(t) {
		fmt.Fprintf(os.Stderr, "connleak/testutil: NewTracker(%s): no test to bind the tracker to; it will not be verified or closed\n", nilName(t))
		return tr
	}
	if h, ok := t.(helper); ok {
		h.Helper()
	}
	cfg := newConfig(opts)
	if cfg.trackerSet {
		cfg.fail("NewTracker: WithTracker is not allowed here: NewTracker verifies the tracker it makes")
	}
	cfg.tracker = tr
	name := testName(t)
	addLive(tr)
	t.Cleanup(func() {
		if h, ok := t.(helper); ok {
			h.Helper()
		}
		// Close first: the poller goroutine must be gone before goroutines
		// are checked. Poll still works on a closed tracker.
		tr.Close()
		verifyTest(t, cfg, scope{name: name})
		removeLive(tr)
	})
	return tr
}

// VerifyTestMain runs the package's tests and then, if they passed,
// verifies the tracker as VerifyNone does (tracker.Default(), or the one
// given by WithTracker), over everything the whole package left open. It
// prints the report on standard error, naming for each leak the test whose
// line opened it, and exits with the tests' exit code, or 1 when it found
// leaks. Use it from TestMain:
//
//	func TestMain(m *testing.M) {
//		testutil.VerifyTestMain(m, testutil.WithGoroutines())
//	}
//
// A nil m, or a nil *testing.M in m, is reported on standard error and exits
// with code 2.
func VerifyTestMain(m TestingM, opts ...Option) {
	os.Exit(verifyMain(m, os.Stderr, opts))
}

func verifyMain(m TestingM, w io.Writer, opts []Option) int {
	if isNil(m) {
		fmt.Fprintf(w, "connleak/testutil: VerifyTestMain(%s): no tests to run\n", nilName(m))
		return 2
	}
	code := m.Run()
	if code != 0 {
		return code
	}
	cfg := newConfig(opts)
	if !cfg.trackerSet {
		cfg.tracker = tracker.Default()
	}
	r := &mainReporter{w: w}
	verifyTest(r, cfg, scope{main: true})
	if r.failed {
		return 1
	}
	return 0
}

// mainReporter is the TestingT of VerifyTestMain: it prints to w.
type mainReporter struct {
	w      io.Writer
	failed bool
}

func (r *mainReporter) Errorf(format string, args ...any) {
	r.failed = true
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprint(r.w, msg)
}

func (r *mainReporter) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprint(r.w, msg)
}

// isNil reports whether v is nil or holds a nil pointer, map, slice, channel
// or function: `var t *testing.T` passed as a TestingT is not == nil, and its
// methods would panic.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// nilName is how a message names the nil it was given: "nil", or
// "(*testing.T)(nil)".
func nilName(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("(%T)(nil)", v)
}

func testName(t TestingT) string {
	if n, ok := t.(namer); ok {
		return n.Name()
	}
	return ""
}
