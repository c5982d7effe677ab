package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// BenchmarkKeepAliveGet runs a keep-alive GET loop against a loopback
// server three ways, interleaved: through a plain transport (raw), through
// NewTransport (tracked), and, for comparison, through otelhttp's transport
// with no-op providers (otelhttp). It reports each one's ns/op and its
// ratio to raw.
//
//	go test -run '^$' -bench KeepAliveGet -count 10 ./nethttp
func BenchmarkKeepAliveGet(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello, keep-alive")
	}))
	defer srv.Close()
	tr := tracker.New(tracker.WithLogger(nil))
	defer tr.Close()
	clients := []*http.Client{
		{Transport: &http.Transport{}},
		{Transport: nethttp.NewTransport(&http.Transport{}, nethttp.WithTracker(tr))},
		{Transport: otelhttp.NewTransport(&http.Transport{},
			otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))},
	}
	var gets []func()
	for _, c := range clients {
		defer c.CloseIdleConnections()
		gets = append(gets, func() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	interleave(b, []string{"raw", "tracked", "otelhttp"}, gets)
}
