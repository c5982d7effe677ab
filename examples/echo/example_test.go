package echo_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/connleak/connleak/examples/echo"
	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
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

// The report for the client's bug, checked: the two leaked connections are
// grouped under the example's line that called Echo, then the client's line
// that dialed, and they are in CLOSE_WAIT because the server has closed its
// side.
func Example_leakReport() {
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := echo.Serve(tr.WrapListener(ln))
	c := echo.NewClient(tr.WrapDialer(nil), srv.Addr())

	for range 2 {
		c.Echo(context.Background(), "") // the error path that leaks
	}
	// A served request: the server has accepted the two before it (its
	// accept queue is first in, first out), so Close closes their server
	// side rather than resetting them from the queue.
	c.Echo(context.Background(), "ok")
	srv.Close()

	var t printT // a *testing.T in a test
	testutil.VerifyNone(t, testutil.WithTracker(tr), testutil.WithTimeout(50*time.Millisecond))
	// Output:
	// connleak: the test left 2 resources still open (waited D for them to close)
	//
	// 2 conns opened at example_test.go:45 in Example_leakReport
	//     conn tcp 127.0.0.1:PORT -> 127.0.0.1:PORT (CLOSE_WAIT), open for D
	//     conn tcp 127.0.0.1:PORT -> 127.0.0.1:PORT (CLOSE_WAIT), open for D
	//   through echo.go:113 in (*Client).Echo
}
