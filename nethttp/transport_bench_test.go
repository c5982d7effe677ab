package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// BenchmarkKeepAliveGet runs a keep-alive GET loop against a loopback
// server through a plain transport and through NewTransport, interleaved
// (each op runs both, alternating which goes first, so that load on a
// shared machine hits both alike), and reports raw-ns/op, tracked-ns/op and
// their ratio.
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
	var tRaw, tTracked time.Duration
	n := 0
	for b.Loop() {
		first, second, d1, d2 := raw, tracked, &tRaw, &tTracked
		if n%2 == 1 {
			first, second, d1, d2 = tracked, raw, &tTracked, &tRaw
		}
		t0 := time.Now()
		get(first)
		t1 := time.Now()
		get(second)
		*d2 += time.Since(t1)
		*d1 += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tTracked.Nanoseconds())/float64(n), "tracked-ns/op")
	b.ReportMetric(float64(tTracked)/float64(tRaw), "tracked/raw")
}
