package nethttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
