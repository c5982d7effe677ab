package leakdemo

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
)

// defaultPollerRunning reports whether a goroutine runs the poller of
// tracker.Default(), which runs from the moment that tracker is made. A
// goroutine shows no stack while it runs on another thread, so the
// goroutines are listed a few times over some milliseconds.
func defaultPollerRunning() bool {
	buf := make([]byte, 1<<20)
	for range 20 {
		n := runtime.Stack(buf, true)
		if bytes.Contains(buf[:n], []byte("tracker.(*Tracker).runProcessWide(")) {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// Run alone in its process: IgnoreCurrent, the process sweep, and
// verifications of a tracker of the test's own start no tracker.Default(),
// even while an unwrapped socket is still open for a while.
func TestNoDefaultPoller(t *testing.T) {
	if defaultPollerRunning() {
		t.Fatal("tracker.Default() was made before the test")
	}
	t.Cleanup(func() { // runs after NewTracker's verification
		if defaultPollerRunning() {
			t.Error("tracker.Default() was made: its poller is running")
		}
	})
	tr := testutil.NewTracker(t, testutil.IgnoreCurrent(), testutil.WithProcessSockets(), testutil.WithGoroutines())
	own := tracker.New(tracker.WithLogger(nil))
	defer own.Close()
	opts := []testutil.Option{testutil.WithTracker(own), testutil.IgnoreCurrent(), testutil.WithProcessSockets(), testutil.WithGoroutines()}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = tr.WrapListener(ln)
	c, err := net.Dial("tcp", ln.Addr().String()) // never wrapped
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// Found by the first checks, gone before the timeout: the verification
	// passes, having looked for the trackers that might own it.
	time.AfterFunc(50*time.Millisecond, func() {
		c.Close()
		s.Close()
	})
	testutil.VerifyNone(t, opts...)
}

// The control: VerifyNone without WithTracker makes tracker.Default(), and
// its poller is seen running.
func TestDefaultPollerControl(t *testing.T) {
	testutil.VerifyNone(t)
	if !defaultPollerRunning() {
		t.Error("tracker.Default() was made but no poller is seen")
	}
}
