// Command httpclient shows the most common CLOSE_WAIT leak in Go clients,
// and connleak naming its line.
//
// A client polls a few endpoints of a local server. On a non-2xx answer it
// returns an error without closing the response body. net/http then waits
// for that body forever: the connection never goes back to the pool, the
// server closes it after its idle timeout, and the client's socket sits in
// CLOSE_WAIT. `ss` shows the socket; connleak shows the line that called
// Do, for the body and for the connection it holds.
//
//	go run ./examples/httpclient
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

// status fetches url and returns its body, or an error for a non-2xx
// answer: on that path the body is never closed.
func status(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req) // connleak: the leak's line
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s: %s", url, resp.Status) // forgot resp.Body.Close()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func run(out io.Writer) ([]tracker.Leak, error) {
	// In production keep the defaults (1 s poll, 30 s grace); the example is
	// in a hurry.
	tr := tracker.New(
		tracker.WithPollInterval(20*time.Millisecond),
		tracker.WithGracePeriod(200*time.Millisecond),
		tracker.WithLogger(nil), // the example prints its own report
	)
	defer tr.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/orders", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
	})
	// A short idle timeout, as servers and load balancers have: it closes
	// the connection the leaked body holds.
	srv := &http.Server{Handler: mux, IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	client := nethttp.WrapClient(&http.Client{}, nethttp.WithTracker(tr))
	defer client.CloseIdleConnections()
	// Canceled on the way out, it ends the read loops net/http keeps waiting
	// for the leaked bodies; a long-running program has no such way out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := "http://" + ln.Addr().String()
	var kept []error // the caller keeps its errors; the bodies are lost all the same
	for _, path := range []string{"/health", "/orders", "/health", "/orders"} {
		body, err := status(ctx, client, base+path)
		if err != nil {
			kept = append(kept, err)
			fmt.Fprintln(out, "error:", err)
			continue
		}
		fmt.Fprintf(out, "%s: %q\n", path, body)
	}

	// The server closes the idle connections after 100 ms, and the grace
	// period passes: wait for the poller's verdict, bounded.
	deadline := time.Now().Add(5 * time.Second)
	var leaks []tracker.Leak
	for time.Now().Before(deadline) {
		leaks = tr.Leaks()
		if len(leaks) >= len(kept) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(out, "\nconnleak found %d leaks:\n\n", len(leaks))
	for _, g := range tracker.GroupLeaks(leaks) {
		fmt.Fprintln(out, g)
	}
	if len(leaks) == 0 {
		return nil, errors.New("no leak found")
	}
	return leaks, nil
}
