package leakdemo

import (
	"net"
	"testing"
	"time"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
)

// NewTracker: a leaking test fails, and the report names this line.
func TestLeakNewTracker(t *testing.T) {
	tr := testutil.NewTracker(t)
	// The server's cleanup runs before the tracker's: the leaked conn is in
	// CLOSE_WAIT when it is reported.
	addr, _ := startServer(t)
	c, err := Connect(tr.WrapDialer(nil), addr) // LINE:leak-newtracker
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
}

// NewTracker: a test that closes what it opened passes.
func TestCleanNewTracker(t *testing.T) {
	tr := testutil.NewTracker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = tr.WrapListener(ln)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err == nil {
			s.Read(make([]byte, 1))
		}
		accepted <- s
	}()
	c, err := Connect(tr.WrapDialer(nil), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	if s := <-accepted; s != nil {
		s.Close()
	}
	c.Close()
}

// VerifyNone on the shared tracker.Default(): the leaking test fails.
func TestLeakVerifyNone(t *testing.T) {
	defer testutil.VerifyNone(t)
	addr, stop := startServer(t)
	defer stop()
	c, err := Connect(tracker.Default().WrapDialer(nil), addr) // LINE:leak-verifynone
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
}

// A close that happens on another goroutine shortly after the test returns
// is waited for.
func TestAsyncClose(t *testing.T) {
	defer testutil.VerifyNone(t)
	addr, _ := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		c.Close()
	}()
}

// ... but not for longer than the timeout.
func TestAsyncTooLate(t *testing.T) {
	defer testutil.VerifyNone(t, testutil.WithTimeout(50*time.Millisecond))
	addr, _ := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr) // LINE:async-too-late
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(2 * time.Second)
		c.Close()
	}()
}

var (
	parLeakOpened = make(chan struct{})
	parCleanDone  = make(chan struct{})
)

// Two parallel tests, each with its own tracker: the clean one verifies while
// the leaking one still holds its connection, and only the leaking one fails.
func TestParallelLeak(t *testing.T) {
	t.Parallel()
	tr := testutil.NewTracker(t)
	addr, _ := startServer(t)
	c, err := Connect(tr.WrapDialer(nil), addr) // LINE:parallel-leak
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
	close(parLeakOpened)
	waitFor(t, parCleanDone, 10*time.Second)
}

func TestParallelClean(t *testing.T) {
	t.Parallel()
	t.Cleanup(func() { close(parCleanDone) }) // runs after NewTracker's verification
	tr := testutil.NewTracker(t)
	waitFor(t, parLeakOpened, 10*time.Second)
	addr, _ := startServer(t)
	c, err := Connect(tr.WrapDialer(nil), addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

var (
	sharedLeakOpened = make(chan struct{})
	sharedCleanDone  = make(chan struct{})
)

// The same on the shared tracker.Default(): the open-site stacks name the
// test that opened each resource.
func TestSharedParallelLeak(t *testing.T) {
	t.Parallel()
	addr, _ := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr) // LINE:shared-parallel-leak
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
	close(sharedLeakOpened)
	waitFor(t, sharedCleanDone, 10*time.Second)
	testutil.VerifyNone(t)
}

func TestSharedParallelClean(t *testing.T) {
	t.Parallel()
	defer close(sharedCleanDone)
	waitFor(t, sharedLeakOpened, 10*time.Second)
	addr, stop := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	stop()
	testutil.VerifyNone(t)
}

// IgnoreCurrent: what was open before the snapshot is not this test's
// business.
func TestIgnoreCurrent(t *testing.T) {
	addr, _ := startServer(t)
	dial := tracker.Default().WrapDialer(nil)
	before, err := Connect(dial, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	defer testutil.VerifyNone(t, testutil.IgnoreCurrent())
	c, err := Connect(dial, addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// IgnoreCurrent still reports what is opened after the snapshot, and only
// that.
func TestIgnoreCurrentLeak(t *testing.T) {
	addr, _ := startServer(t)
	dial := tracker.Default().WrapDialer(nil)
	before, err := Connect(dial, addr) // LINE:ignore-leak-before
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	defer testutil.VerifyNone(t, testutil.IgnoreCurrent())
	c, err := Connect(dial, addr) // LINE:ignore-leak-after
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
}

// Without IgnoreCurrent, the connection opened before fails the test: the
// control for TestIgnoreCurrent.
func TestIgnoreCurrentControl(t *testing.T) {
	addr, _ := startServer(t)
	dial := tracker.Default().WrapDialer(nil)
	before, err := Connect(dial, addr) // LINE:ignore-control-before
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	defer testutil.VerifyNone(t)
	c, err := Connect(dial, addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// IgnoreOpenedBy leaves out what a named function opened.
func TestIgnoreOpenedBy(t *testing.T) {
	tr := testutil.NewTracker(t, testutil.IgnoreOpenedBy("leakdemo.Connect"))
	addr, _ := startServer(t)
	c, err := Connect(tr.WrapDialer(nil), addr)
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
}

// WithGoroutines: a leaked goroutine and a leaked socket, in one failure.
func TestGoroutineAndSocket(t *testing.T) {
	tr := testutil.NewTracker(t, testutil.WithGoroutines())
	addr, _ := startServer(t)
	c, err := Connect(tr.WrapDialer(nil), addr) // LINE:goroutine-socket
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
	block := make(chan struct{})
	hold(block)
	go leakedWorker(block)
}

func leakedWorker(block chan struct{}) { <-block }

// WithGoroutines passes when goroutines exit in time, and never reports the
// pollers of tracker.Default() or of the test's own tracker.
func TestGoroutinesClean(t *testing.T) {
	tr := testutil.NewTracker(t, testutil.WithGoroutines())
	addr, _ := startServer(t)
	for _, dial := range []tracker.DialFunc{tr.WrapDialer(nil), tracker.Default().WrapDialer(nil)} {
		c, err := Connect(dial, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	go time.Sleep(100 * time.Millisecond)
}

// WithProcessSockets: a socket opened by a plain net.Dial, which no tracker
// wrapped, is found by the process sweep.
func TestProcessSockets(t *testing.T) {
	defer testutil.VerifyNone(t, testutil.IgnoreCurrent(), testutil.WithProcessSockets())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String()) // never wrapped
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The peer hangs up: c goes to CLOSE_WAIT.
	s.Close()
	w, err := Connect(tracker.Default().WrapDialer(nil), ln.Addr().String()) // LINE:process-wrapped
	if err != nil {
		t.Fatal(err)
	}
	hold(w)
	t.Logf("unwrapped: %s -> %s", c.LocalAddr(), c.RemoteAddr())
	t.Logf("wrapped: %s -> %s", w.LocalAddr(), w.RemoteAddr())
}

// WithProcessSockets passes when every socket was closed.
func TestProcessSocketsClean(t *testing.T) {
	defer testutil.VerifyNone(t, testutil.IgnoreCurrent(), testutil.WithProcessSockets())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	ln.Close()
}

// Run under VerifyTestMain (LEAKDEMO_MAIN=verify): a clean package that used
// tracker.Default() and started a goroutine that ended passes.
func TestMainClean(t *testing.T) {
	addr, _ := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
}

// Run under VerifyTestMain: the test passes, and VerifyTestMain fails the
// package, naming this line.
func TestMainLeak(t *testing.T) {
	addr, _ := startServer(t)
	c, err := Connect(tracker.Default().WrapDialer(nil), addr) // LINE:main-leak
	if err != nil {
		t.Fatal(err)
	}
	hold(c)
}
