package tracker_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/connleak/connleak/tracker"
)

// A client whose server hung up, and which never closed its side: after the
// grace period the tracker reports it, naming the line that dialed.
func Example() {
	tr := tracker.New(
		tracker.WithGracePeriod(0),          // production: 30 s
		tracker.WithPollInterval(time.Hour), // this example polls by hand
		tracker.WithLogger(nil),
	)
	defer tr.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	dial := tr.WrapDialer(nil)
	conn, _ := dial(context.Background(), "tcp", ln.Addr().String()) // the leaky line
	server, _ := ln.Accept()
	server.Close() // the peer hangs up; conn is never closed

	var leaks []tracker.Leak
	for range 100 { // the kernel takes a moment to process the FIN
		tr.Poll()
		if leaks = tr.Leaks(); len(leaks) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range leaks {
		fmt.Println(l.Kind, l.State, l.Reason)
		fmt.Println("opened by", l.Site().Function)
	}
	conn.Close()
	// Output:
	// conn peer-closed peer closed, never closed here
	// opened by github.com/connleak/connleak/tracker_test.Example
}

// Track follows any closable resource; one dropped without Close is reported
// as collected.
func ExampleTracker_Track() {
	tr := tracker.New(tracker.WithLogger(nil), tracker.WithHoldLimit("lease", time.Millisecond))
	defer tr.Close()

	h := tr.Track("lease", tracker.TrackLabel("lease #42"))
	time.Sleep(5 * time.Millisecond)
	for _, l := range tr.Leaks() {
		fmt.Println(l.Kind, l.Label, l.Reason)
	}
	h.Close()
	fmt.Println("open after Close:", len(tr.Open()))
	// Output:
	// lease lease #42 held longer than its hold limit
	// open after Close: 0
}
