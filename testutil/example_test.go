package testutil_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"go.uber.org/goleak"
)

// printT is a TestingT that prints the failure it is given, up to its first
// stack, with ports and durations masked so that the output is stable.
type printT struct{}

var (
	portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	durRE  = regexp.MustCompile(`(open for|waited) [^ ,)\n]+`)
)

func (printT) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg, _, _ = strings.Cut(msg, "  opened at:\n")
	msg = portRE.ReplaceAllString(msg, "127.0.0.1:PORT")
	msg = durRE.ReplaceAllString(msg, "$1 D")
	fmt.Print(msg)
}

// A test that leaves a connection open fails with a report that names the
// test's line; here the failure is printed instead.
func ExampleVerifyNone() {
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dial := tr.WrapDialer(nil)

	conn, _ := dial(context.Background(), "tcp", ln.Addr().String()) // never closed
	peer, _ := ln.Accept()
	peer.Close() // the server hangs up: conn is in CLOSE_WAIT
	ln.Close()

	var t printT // a *testing.T in a test
	testutil.VerifyNone(t, testutil.WithTracker(tr), testutil.WithTimeout(20*time.Millisecond))
	conn.Close()
	// Output:
	// connleak: the test left 1 resource still open (waited D for them to close)
	//
	// conn opened at example_test.go:42 in ExampleVerifyNone
	//     conn tcp 127.0.0.1:PORT -> 127.0.0.1:PORT (CLOSE_WAIT), open for D
}

// NewTracker gives one test its own tracker, verified when the test ends.
func ExampleNewTracker() {
	_ = func(t *testing.T) {
		t.Parallel() // fine: no other test sees this tracker
		tr := testutil.NewTracker(t)
		dial := tr.WrapDialer(nil) // give it to the code under test
		_ = dial
	}
}

// VerifyTestMain checks a whole package after its tests, goroutines included.
func ExampleVerifyTestMain() {
	_ = func(m *testing.M) { // TestMain
		testutil.VerifyTestMain(m, testutil.WithGoroutines())
	}
}

// errorT is a goleak.TestingT that prints the failure it is given.
type errorT struct{}

func (errorT) Error(args ...any) { fmt.Println(args...) }

// A package that checks goroutines with goleak directly and uses
// tracker.Default() (VerifyNone without WithTracker does) leaves the default
// tracker's poller out of goleak's check.
func ExampleIgnoreDefaultPoller() {
	harness := goleak.IgnoreCurrent() // the goroutine that collects an example's output
	tracker.Default()                 // its poller runs for the life of the process

	var t errorT // a *testing.T in a test
	goleak.VerifyNone(t, harness, testutil.IgnoreDefaultPoller())
	fmt.Println("goleak found no leaked goroutine")

	_ = func(m *testing.M) { // or for the whole package, in TestMain
		goleak.VerifyTestMain(m, testutil.IgnoreDefaultPoller())
	}
	// Output: goleak found no leaked goroutine
}
