package nethttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// A response body left open on an error path, found by its hold limit and
// named by the line that called Get.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tr := tracker.New(tracker.WithLogger(nil), tracker.WithHoldLimit(nethttp.KindBody, 20*time.Millisecond))
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends net/http's wait for the body, once the example is done
	client := nethttp.WrapClient(&http.Client{}, nethttp.WithTracker(tr))

	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/status", nil)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		// The bug: this path returns without resp.Body.Close().
		fmt.Println("status", resp.StatusCode)
	}

	time.Sleep(50 * time.Millisecond)
	tr.Poll()
	for _, l := range tr.Leaks() {
		method, _, _ := strings.Cut(l.Label, " ") // the label is "GET http://127.0.0.1:PORT/status"
		fmt.Printf("%s %s: %s\n  at %s\n", l.Kind, method, l.Reason, l.Site().Function)
	}
	// Output:
	// status 503
	// http.body GET: held longer than its hold limit
	//   at github.com/connleak/connleak/nethttp_test.Example
}

// The debug page, mounted on a mux of its own and served on a loopback
// listener apart from the service's port: it shows addresses and stacks.
// Here the program reads its JSON view; a browser gets the HTML view and
// curl the text.
func ExampleDebugHandler() {
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ln = tr.WrapListener(ln) // the service's listener, tracked
	defer ln.Close()

	mux := http.NewServeMux()
	mux.Handle("/debug/connleak", nethttp.DebugHandler(tr))
	debugLn, err := net.Listen("tcp", "127.0.0.1:0") // loopback only
	if err != nil {
		fmt.Println(err)
		return
	}
	debugSrv := &http.Server{Handler: mux}
	go debugSrv.Serve(debugLn)
	defer debugSrv.Close()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + debugLn.Addr().String() + "/debug/connleak?format=json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var rep nethttp.DebugReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("health:", rep.Health.Status)
	for _, g := range rep.Open.Groups {
		fmt.Printf("%d %s %v\n  at %s (%s)\n", g.Count, g.Kind, g.States, g.Site.Function, filepath.Base(g.Site.File))
	}
	// Output:
	// health: ok
	// 1 listener map[LISTEN:1]
	//   at github.com/connleak/connleak/nethttp_test.ExampleDebugHandler (example_test.go)
}
