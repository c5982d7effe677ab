package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// BenchmarkKeepAliveGet runs a keep-alive GET loop against a loopback
// server through a plain transport and through NewTransport, interleaved
// (see interleave), and reports raw-ns/op, tracked-ns/op and their ratio.
//
//	go test -run '^$' -bench KeepAliveGet -count 10 ./nethttp
func BenchmarkKeepAliveGet(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello, keep-alive")
	}))
	defer srv.Close()
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	raw := &http.Client{Transport: &http.Transport{}}
	tracked := &http.Client{Transport: nethttp.NewTransport(&http.Transport{}, nethttp.WithTracker(tr))}
	defer raw.CloseIdleConnections()
	defer tracked.CloseIdleConnections()
	get := func(c *http.Client) {
		resp, err := c.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(raw) // the connections, dialed once
	get(tracked)
	b.ReportAllocs()
	interleave(b, func() { get(raw) }, func() { get(tracked) })
}
