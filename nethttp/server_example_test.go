package nethttp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// A handler that hijacks its connection and never closes it, on an
// httptest server: wrap the server's Listener with the tracker before
// Start, and make its Config ready with WrapServer. Once the client has
// gone, the connection sits in CLOSE_WAIT, and the report names the line
// that hijacked it.
func ExampleWrapServer() {
	tr := tracker.New(tracker.WithLogger(nil),
		tracker.WithPollInterval(10*time.Millisecond), tracker.WithGracePeriod(20*time.Millisecond))
	defer tr.Close()
	sessions := make(chan net.Conn, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack() // the line the report names
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		sessions <- conn // the bug: nothing closes it when the client goes
	}))
	ts.Listener = tr.WrapListener(ts.Listener)
	nethttp.WrapServer(ts.Config, nethttp.WithTracker(tr))
	ts.Start()
	defer ts.Close()

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Fprint(c, "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	c.Close() // the client leaves

	var leaks []tracker.Leak
	for deadline := time.Now().Add(5 * time.Second); len(leaks) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		leaks = tr.Leaks()
	}
	for _, l := range leaks {
		fmt.Printf("%s: %s, held by %s\n  at %s\n", l.Kind, l.Reason, l.HeldBy.Kind, l.Site().Function)
	}
	(<-sessions).Close()
	// Output:
	// 101 Switching Protocols
	// conn: peer closed, never closed here, held by http.hijacked
	//   at github.com/connleak/connleak/nethttp_test.ExampleWrapServer.func1
}

// A handler that waits on something that never comes, and does not watch
// its request's context: its client gives up, and the connection stays in
// CLOSE_WAIT under the handler. Middleware names the handler.
func ExampleMiddleware() {
	tr := tracker.New(tracker.WithLogger(nil),
		tracker.WithPollInterval(10*time.Millisecond), tracker.WithGracePeriod(20*time.Millisecond))
	defer tr.Close()
	upstream := make(chan string) // never answers, until the example ends
	waiting := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, _ *http.Request) { // the line the report names
		waiting <- struct{}{}
		fmt.Fprint(w, <-upstream)
	})
	ts := httptest.NewUnstartedServer(nethttp.Middleware(mux, nethttp.WithTracker(tr)))
	ts.Listener = tr.WrapListener(ts.Listener)
	nethttp.WrapServer(ts.Config, nethttp.WithTracker(tr))
	ts.Start()
	defer ts.Close()
	defer close(upstream)

	// The client gives up once the handler is waiting.
	ctx, giveUp := context.WithCancel(context.Background())
	go func() { <-waiting; giveUp() }()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/report", nil)
	if _, err := http.DefaultClient.Do(req); err != nil {
		fmt.Println("client: gave up")
	}

	var leaks []tracker.Leak
	for deadline := time.Now().Add(5 * time.Second); len(leaks) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		leaks = tr.Leaks()
	}
	for _, l := range leaks {
		fmt.Printf("%s: %s, held by %s %q\n  at %s\n", l.Kind, l.Reason, l.HeldBy.Kind, l.HeldBy.Label, l.Site().Function)
	}
	// Output:
	// client: gave up
	// conn: peer closed, never closed here, held by http.request "GET /report"
	//   at github.com/connleak/connleak/nethttp_test.ExampleMiddleware.func1
}
