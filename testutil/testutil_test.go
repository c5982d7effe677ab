package testutil_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// What the package promises to accept, checked by the compiler.
var (
	_ testutil.TestingT = (*testing.T)(nil)
	_ testutil.TestingT = (*testing.B)(nil)
	_ testutil.TestingT = testing.TB(nil)
	_ testutil.TestingT = assert.TestingT(nil)  // what testify's assert accepts
	_ testutil.TestingT = require.TestingT(nil) // what testify's require accepts
	_ testutil.CleanupT = testing.TB(nil)
	_ testutil.TestingM = (*testing.M)(nil)
)

// The package's own tests leave no goroutine behind either.
func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, testutil.WithGoroutines())
}

// A testify user passes the value testify's require accepts.
func TestTestifyTestingT(t *testing.T) {
	var tt require.TestingT = t
	tr := newTracker(t)
	testutil.VerifyNone(tt, testutil.WithTracker(tr))
}

func TestReportGroupsBySiteAndShowsState(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dial(t, tr, srv.addr())) // one site, three conns
	}
	other := dial(t, tr, srv.addr())
	srv.hangUp() // every client conn goes to CLOSE_WAIT

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(50*time.Millisecond))
	out := rec.text()
	t.Log(out)
	require.Len(t, rec.errors, 1, "one failure message")
	assert.Contains(t, out, "connleak: "+t.Name()+" left 4 resources still open")
	assert.Regexp(t, `\n3 conns opened at testutil_test\.go:\d+ in TestReportGroupsBySiteAndShowsState\n`, out)
	assert.Regexp(t, `\nconn opened at testutil_test\.go:\d+ in TestReportGroupsBySiteAndShowsState\n`, out)
	assert.Equal(t, 4, strings.Count(out, " (CLOSE_WAIT), open for "), out)
	for _, c := range conns {
		c.Close()
	}
	other.Close()

	rec = &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.False(t, rec.failed(), rec.text())
}

// The test's own line is named first, even when production code opened the
// resource; an accepted connection names the handler that first used it.
func TestReportNamesTestLineThenSite(t *testing.T) {
	tr := newTracker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln = tr.WrapListener(ln)
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Read(make([]byte, 1)) // the handler's first read
		}
		got <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.Write([]byte("x"))
	accepted := <-got
	require.NotNil(t, accepted)
	defer accepted.Close()
	ln.Close()

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	out := rec.text()
	t.Log(out)
	assert.Regexp(t, `\nconn accepted and first used at testutil_test\.go:\d+ in TestReportNamesTestLineThenSite\.func1\n`, out)
	assert.Regexp(t, `conn tcp 127\.0\.0\.1:\d+ <- 127\.0\.0\.1:\d+ \(ESTABLISHED\), open for`, out)
	assert.Contains(t, out, "first read/write (the handler that owns it):")
	assert.Contains(t, out, "accepted at:")
}

func TestBadInputFailsWithMessagesNotPanics(t *testing.T) {
	rec := &recorder{name: t.Name()}
	tr := newTracker(t)
	testutil.VerifyNone(rec, nil, testutil.WithTracker(nil), testutil.WithTimeout(-time.Second),
		testutil.IgnoreOpenedBy(""), testutil.WithTracker(tr))
	out := rec.text()
	assert.Contains(t, out, "WithTracker(nil)")
	assert.Contains(t, out, "WithTimeout(-1s): the timeout must not be negative")
	assert.Contains(t, out, `IgnoreOpenedBy(""): the function name must not be empty`)

	rec = &recorder{name: t.Name()}
	t.Cleanup(func() { // runs after NewTracker's own cleanup
		assert.Contains(t, rec.text(), "NewTracker: WithTracker is not allowed here")
	})
	ntr := testutil.NewTracker(&cleanupRecorder{recorder: rec, t: t}, testutil.WithTracker(tr))
	require.NotNil(t, ntr)

	assert.NotPanics(t, func() { testutil.VerifyNone(nil) })
	assert.NotPanics(t, func() {
		tr := testutil.NewTracker(nil)
		require.NotNil(t, tr)
		tr.Close()
	})
}

// A nil *testing.T, *testing.B or *testing.M, which is not == nil once it is
// in an interface, is reported on standard error as nil is, and nothing
// panics.
func TestTypedNilReportedNotPanics(t *testing.T) {
	var nt *testing.T
	var nb *testing.B
	var nm *testing.M
	stderr := captureStderr(t, func() {
		assert.NotPanics(t, func() { testutil.VerifyNone(nt) })
		assert.NotPanics(t, func() { testutil.VerifyNone(nb, testutil.WithGoroutines()) })
		assert.NotPanics(t, func() {
			tr := testutil.NewTracker(nt)
			require.NotNil(t, tr)
			tr.Close()
		})
		assert.NotPanics(t, func() { testutil.VerifyNone(nil) })
	})
	assert.Contains(t, stderr, "connleak/testutil: VerifyNone((*testing.T)(nil)): no test to report to; nothing was verified\n")
	assert.Contains(t, stderr, "connleak/testutil: VerifyNone((*testing.B)(nil)): no test to report to")
	assert.Contains(t, stderr, "connleak/testutil: NewTracker((*testing.T)(nil)): no test to bind the tracker to")
	assert.Contains(t, stderr, "connleak/testutil: VerifyNone(nil): no test to report to")

	var out bytes.Buffer
	code := 0
	assert.NotPanics(t, func() { code = testutil.VerifyMainForTest(nm, &out) })
	assert.Equal(t, 2, code)
	assert.Equal(t, "connleak/testutil: VerifyTestMain((*testing.M)(nil)): no tests to run\n", out.String())
}

// captureStderr returns what f wrote to os.Stderr.
func captureStderr(t *testing.T, f func()) string {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	saved := os.Stderr
	os.Stderr = w
	func() {
		defer func() {
			os.Stderr = saved
			w.Close()
		}()
		f()
	}()
	return <-done
}

type cleanupRecorder struct {
	*recorder
	t *testing.T
}

func (c *cleanupRecorder) Cleanup(f func()) { c.t.Cleanup(f) }

// An asynchronous close is waited for, and the wait ends as soon as it
// happens, not at the timeout.
func TestWaitsForAsyncCloseAndNoLonger(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	c := dial(t, tr, srv.addr())
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}()
	rec := &recorder{name: t.Name()}
	start := time.Now()
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(5*time.Second))
	took := time.Since(start)
	assert.False(t, rec.failed(), rec.text())
	assert.GreaterOrEqual(t, took, 40*time.Millisecond)
	assert.Less(t, took, time.Second, "the wait must end soon after the close")
}

// On the shared tracker, a resource opened by another test's function is
// left to that test; one this test opened is reported.
func TestSharedTrackerAttribution(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	c := dial(t, tr, srv.addr())
	defer c.Close()

	other := &recorder{name: "TestSomethingElse/sub"}
	testutil.VerifyNone(other, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.False(t, other.failed(), "opened by %s, not by TestSomethingElse:\n%s", t.Name(), other.text())

	self := &recorder{name: t.Name() + "/sub"}
	testutil.VerifyNone(self, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.True(t, self.failed(), "a subtest of the test that opened it")

	// A TestingT without Name cannot be told apart: everything is reported.
	anon := &struct{ testutil.TestingT }{&recorder{}}
	testutil.VerifyNone(anon, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.True(t, anon.TestingT.(*recorder).failed())
}

func TestIgnoreOpenedBy(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	c := openThroughHelper(t, tr, srv.addr())
	defer c.Close()
	for _, name := range []string{
		"github.com/connleak/connleak/testutil_test.openThroughHelper",
		"testutil_test.openThroughHelper",
	} {
		rec := &recorder{name: t.Name()}
		testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0), testutil.IgnoreOpenedBy(name))
		assert.False(t, rec.failed(), "%s: %s", name, rec.text())
	}
	for _, name := range []string{"openThroughHelper", "other_test.openThroughHelper", "testutil_test.openThrough"} {
		rec := &recorder{name: t.Name()}
		testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0), testutil.IgnoreOpenedBy(name))
		assert.True(t, rec.failed(), "%s must not match", name)
	}
}

func openThroughHelper(t *testing.T, tr *tracker.Tracker, addr string) net.Conn {
	return dial(t, tr, addr)
}

// IgnoreCurrent takes its snapshot when it is called, not when VerifyNone
// runs.
func TestIgnoreCurrentSnapshotsAtCall(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	before := dial(t, tr, srv.addr())
	defer before.Close()
	ignore := testutil.IgnoreCurrent()
	after := dial(t, tr, srv.addr())

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0), ignore)
	assert.Contains(t, rec.text(), "left 1 resource still open")
	assert.Contains(t, rec.text(), after.LocalAddr().String())
	assert.NotContains(t, rec.text(), before.LocalAddr().String())
	after.Close()
}

// A connection dropped without Close is reported once, as collected, even
// when the garbage collector reclaimed it before the check.
func TestCollectedReportedOnce(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	dropConn(t, tr, srv.addr())
	deadline := time.Now().Add(5 * time.Second)
	for len(collectedOf(tr)) == 0 && time.Now().Before(deadline) {
		runtime.GC()
		tr.Poll()
		time.Sleep(time.Millisecond)
	}
	require.NotEmpty(t, collectedOf(tr), "the dropped conn was not collected")

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.Contains(t, rec.text(), "1 resource garbage-collected without Close")
	assert.Regexp(t, `conn garbage-collected without Close, opened at testutil_test\.go:\d+ in TestCollectedReportedOnce`, rec.text())
	assert.Contains(t, rec.text(), "before it was collected")

	again := &recorder{name: t.Name()}
	testutil.VerifyNone(again, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.False(t, again.failed(), again.text())
}

//go:noinline
func dropConn(t *testing.T, tr *tracker.Tracker, addr string) {
	dial(t, tr, addr).Write([]byte("x"))
}

// The goroutine check shares the one timeout: with a short one, a leaked
// goroutine fails after one call of goleak (with its own retries), not after
// repeated rounds of them; with a longer one, goleak is called again while a
// call fits in the time left, and the wait ends before the deadline is
// overrun by a call; a goroutine that exits within the timeout passes.
func TestGoroutinesShareTheTimeout(t *testing.T) {
	tr := newTracker(t)
	stop := make(chan struct{})
	go blockedWorker(stop)
	// The bounds below are in units of one failing goleak.Find on this
	// machine now, which retries on its own before it returns: a loaded
	// machine, or the race detector, stretches both alike.
	start := time.Now()
	require.Error(t, goleak.Find(testutil.IgnoreDefaultPoller()))
	oneFind := time.Since(start)
	rec := &recorder{name: t.Name()}
	start = time.Now()
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(100*time.Millisecond), testutil.WithGoroutines())
	took := time.Since(start)
	assert.Contains(t, rec.text(), "left leaked goroutines")
	assert.Contains(t, rec.text(), "\ngoroutines still running (goleak):\n")
	assert.Contains(t, rec.text(), "testutil_test.blockedWorker")
	assert.Less(t, took, 100*time.Millisecond+2*oneFind, "one goleak call, not one per backoff step (one call: %v)", oneFind)

	const timeout = time.Second
	rec = &recorder{name: t.Name()}
	start = time.Now()
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(timeout), testutil.WithGoroutines())
	took = time.Since(start)
	close(stop)
	assert.Contains(t, rec.text(), "testutil_test.blockedWorker")
	assert.GreaterOrEqual(t, took, timeout/2, "a call that fits in the time left is made")
	assert.Less(t, took, timeout+oneFind, "no call is started that would overrun the timeout (one call: %v)", oneFind)

	later := make(chan struct{})
	go blockedWorker(later)
	time.AfterFunc(600*time.Millisecond, func() { close(later) })
	rec = &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(3*time.Second), testutil.WithGoroutines())
	assert.False(t, rec.failed(), rec.text())

	// goleak's refusal of its options is reported as such.
	rec = &recorder{name: t.Name()}
	start = time.Now()
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(time.Second),
		testutil.WithGoroutines(goleak.Cleanup(func(int) {})))
	assert.Less(t, time.Since(start), oneFind, "a refusal is not retried (one failing call: %v)", oneFind)
	assert.Contains(t, rec.text(), "left a failed goroutine check")
	assert.Contains(t, rec.text(), "the goroutine check failed: goleak: Cleanup can only be passed")

	// goleak's own options pass through.
	stop = make(chan struct{})
	defer close(stop)
	go blockedWorker(stop)
	rec = &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0),
		testutil.WithGoroutines(goleak.IgnoreTopFunction("github.com/connleak/connleak/testutil_test.blockedWorker")))
	assert.False(t, rec.failed(), rec.text())
}

func blockedWorker(stop chan struct{}) { <-stop }

// A refusal of goleak's options is told from goroutines goleak found by what
// goleak does with the options, not by its message: with a goroutine leaked,
// options goleak accepts are no refusal, and goleak.Cleanup, which goleak.Find
// refuses, is one, with or without the leaked goroutine.
func TestGoleakRefusalToldWithoutItsText(t *testing.T) {
	stop := make(chan struct{})
	go blockedWorker(stop)
	accepted := []goleak.Option{testutil.IgnoreDefaultPoller()}
	require.Error(t, goleak.Find(accepted...), "goleak finds the worker")
	assert.False(t, testutil.Refused(accepted...), "goroutines found are no refusal")
	cleanup := append(accepted, goleak.Cleanup(func(int) {}))
	assert.True(t, testutil.Refused(cleanup...))

	rec := &recorder{name: t.Name()}
	tr := newTracker(t)
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0),
		testutil.WithGoroutines(goleak.Cleanup(func(int) {})))
	close(stop)
	assert.Contains(t, rec.text(), "left a failed goroutine check")
	assert.NotContains(t, rec.text(), "goroutines still running")
	assert.True(t, testutil.Refused(cleanup...), "with no goroutine left, still a refusal")
}

// fakeM is a TestingM whose tests do what run says.
type fakeM struct{ run func() int }

func (m fakeM) Run() int { return m.run() }

func TestVerifyTestMainInProcess(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	var c net.Conn
	var out bytes.Buffer
	code := testutil.VerifyMainForTest(fakeM{func() int {
		c = dial(t, tr, srv.addr())
		return 0
	}}, &out, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.Equal(t, 1, code)
	assert.Contains(t, out.String(), "connleak: the package's tests left 1 resource still open")
	assert.Regexp(t, regexp.MustCompile(`conn opened at testutil_test\.go:\d+ in TestVerifyTestMainInProcess`), out.String())

	out.Reset()
	code = testutil.VerifyMainForTest(fakeM{func() int { return 3 }}, &out, testutil.WithTracker(tr))
	assert.Equal(t, 3, code, "failing tests keep their exit code")
	assert.Empty(t, out.String(), "leaks are not checked after failing tests")
	c.Close()

	out.Reset()
	code = testutil.VerifyMainForTest(fakeM{func() int { return 0 }}, &out, testutil.WithTracker(tr))
	assert.Equal(t, 0, code, out.String())

	out.Reset()
	assert.Equal(t, 2, testutil.VerifyMainForTest(nil, &out))
	assert.Contains(t, out.String(), "VerifyTestMain(nil)")
}

func TestNewTrackerVerifiesAtCleanup(t *testing.T) {
	rec := &recorder{name: "TestInner"}
	inner := &cleanupList{recorder: rec}
	tr := testutil.NewTracker(inner, testutil.WithTimeout(0))
	srv := newServer(t)
	c := dial(t, tr, srv.addr())
	inner.run()
	assert.Contains(t, rec.text(), "connleak: TestInner left 1 resource still open")
	c.Close()
	// The tracker was closed: its poller goroutine is gone (the package's
	// TestMain checks goroutines), and it still polls by hand.
	tr.Poll()
}

// cleanupList is a CleanupT whose cleanups run when run is called.
type cleanupList struct {
	*recorder
	fns []func()
}

func (c *cleanupList) Cleanup(f func()) { c.fns = append(c.fns, f) }

func (c *cleanupList) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

func TestProcessSocketsUnsupportedNote(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("the sweep is supported here")
	}
	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(newTracker(t)), testutil.WithProcessSockets(), testutil.WithTimeout(0))
	assert.False(t, rec.failed(), rec.text())
	assert.Contains(t, strings.Join(rec.logs, "\n"), "WithProcessSockets skipped")
}

// With IgnoreCurrent and WithProcessSockets, the unwrapped sockets open when
// WithProcessSockets was called are ignored and those opened after it are
// reported; without IgnoreCurrent, all are.
func TestIgnoreCurrentWithProcessSockets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process sweep is supported on Linux")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	plainPair := func() net.Conn { // never wrapped
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c
	}
	before := plainPair()
	ignore := []testutil.Option{testutil.IgnoreCurrent(), testutil.WithProcessSockets()}
	after := plainPair()
	tr := newTracker(t)

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, append(ignore, testutil.WithTracker(tr), testutil.WithTimeout(0))...)
	out := rec.text()
	t.Log(out)
	assert.Contains(t, out, "socket tcp "+after.LocalAddr().String()+" -> ")
	assert.Contains(t, out, " -> "+after.LocalAddr().String()+", ESTABLISHED", "the accepted side")
	assert.NotContains(t, out, before.LocalAddr().String())
	assert.NotContains(t, out, "socket tcp "+ln.Addr().String()+",", "the listener was open before")

	rec = &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithProcessSockets(), testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.Contains(t, rec.text(), before.LocalAddr().String(), "without IgnoreCurrent nothing is ignored")
	assert.Contains(t, rec.text(), after.LocalAddr().String())
}

// Verifying another tracker, the sweep leaves to tracker.Default() the
// sockets its wrappers own.
func TestProcessSocketsLeavesDefaultsSockets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process sweep is supported on Linux")
	}
	def := tracker.Default()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln = def.WrapListener(ln)
	defer ln.Close()
	ignore := []testutil.Option{testutil.IgnoreCurrent(), testutil.WithProcessSockets()}
	c, err := def.WrapDialer(nil)(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, append(ignore, testutil.WithTracker(newTracker(t)), testutil.WithTimeout(0))...)
	assert.False(t, rec.failed(), rec.text())
}

// A tracker made with tracker.New and never closed leaves its poller
// running: the goroutine check reports it, while the poller of
// tracker.Default(), which lives as long as the process, is never reported.
func TestForgottenTrackerPollerIsReported(t *testing.T) {
	_ = tracker.Default()
	forgotten := tracker.New(tracker.WithLogger(nil))
	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTimeout(0), testutil.WithGoroutines())
	require.NoError(t, forgotten.Close())
	assert.Contains(t, rec.text(), "tracker.(*Tracker).run")
	assert.NotContains(t, rec.text(), "runProcessWide")
}

// With the poller of tracker.Default() running, goleak passes with
// IgnoreDefaultPoller and fails without it, on that goroutine.
func TestIgnoreDefaultPoller(t *testing.T) {
	_ = tracker.Default()
	err := goleak.Find()
	require.Error(t, err, "goleak must see the default tracker's poller")
	assert.ErrorContains(t, err, "tracker.(*Tracker).runProcessWide")
	assert.NoError(t, goleak.Find(testutil.IgnoreDefaultPoller()))

	// Only that poller: one of a tracker made with New is still found.
	forgotten := tracker.New(tracker.WithLogger(nil))
	err = goleak.Find(testutil.IgnoreDefaultPoller())
	require.NoError(t, forgotten.Close())
	assert.ErrorContains(t, err, "tracker.(*Tracker).run")
}

// A connection that net/http dialed on its own goroutine and a body holds
// is reported under the test's line that made the holder, with the dial
// shown as "dialed by", never under net/http's line.
func TestHeldConnectionNamesTheHoldersLine(t *testing.T) {
	tr := newTracker(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	transport := &http.Transport{DialContext: tr.WrapDialer(nil)}
	defer transport.CloseIdleConnections()
	var conn net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: transport}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body := tr.Track("body")
	_, _, line, _ := runtime.Caller(0)
	body.Hold(conn)

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	out := rec.text()
	want := fmt.Sprintf("conn opened at testutil_test.go:%d in TestHeldConnectionNamesTheHoldersLine\n", line-1)
	assert.Contains(t, out, want, out)
	assert.Contains(t, out, "  held by body (open), opened at:\n", out)
	assert.Contains(t, out, "  dialed by:\n", out)
	assert.NotContains(t, out, "at transport.go", out)
	body.Close()
}
