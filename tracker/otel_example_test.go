package tracker_test

import (
	"context"
	"fmt"
	"net"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/connleak/connleak/tracker"
)

// A connection dialed while a request was being served, and leaked: the
// tracker's span names the line and links to the request's span. Here the
// SDK records spans in memory; a service exports them (OTLP) to its tracing
// backend.
func ExampleWithTracerProvider() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	tr := tracker.New(
		tracker.WithTracerProvider(tp),
		tracker.WithGracePeriod(0),          // production: 30 s
		tracker.WithPollInterval(time.Hour), // this example polls by hand
		tracker.WithLogger(nil),
	)
	defer tr.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	ctx, request := tp.Tracer("example").Start(context.Background(), "GET /orders")
	conn, _ := tr.WrapDialer(nil)(ctx, "tcp", ln.Addr().String()) // the request's ctx
	request.End()
	server, _ := ln.Accept()
	server.Close() // the peer hangs up; conn is never closed

	var leakSpans []sdktrace.ReadOnlySpan
	for range 100 { // the kernel takes a moment to process the FIN
		tr.Poll() // spans are made by the poll that judges the leak
		for _, s := range spans.Ended() {
			if s.Name() == tracker.SpanLeak {
				leakSpans = append(leakSpans, s)
			}
		}
		if len(leakSpans) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, s := range leakSpans {
		for _, a := range s.Attributes() {
			if a.Key == tracker.AttrLeakReason || a.Key == tracker.AttrLeakCount {
				fmt.Println(a.Key, "=", a.Value.String())
			}
		}
		fmt.Println("linked to the request:", s.Links()[0].SpanContext.Equal(request.SpanContext()))
	}
	conn.Close()
	// Output:
	// connleak.leak.reason = peer_closed
	// connleak.leak.count = 1
	// linked to the request: true
}
