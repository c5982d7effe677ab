// Command otel is the CLOSE_WAIT incident seen from a tracing backend: each
// leaked connection is reported by an OpenTelemetry span that names the line
// of code and links to the request that opened it.
//
// A feed relay serves requests for a topic by subscribing to an upstream
// pub/sub server, once per request, and streaming what it sends. Its pump
// returns on the error path (the upstream hung up) without closing the
// connection, which the session table keeps reachable: the socket sits in
// CLOSE_WAIT on the relay's side. 420 requests subscribe; the upstream
// restarts and drops 250 of them. connleak makes one span for the 250 leaks
// of that line, with a link to the request span of each of the first few.
//
// Spans go to standard output as JSON lines (the SDK's stdout exporter), or
// over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; the story goes to standard
// error.
//
//	go run ./examples/otel 2>/dev/null | jq 'select(.Name == "connleak.leak")'
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 go run ./examples/otel
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/tracker"
)

func main() {
	cfg := config{}
	flag.IntVar(&cfg.requests, "requests", 420, "requests that subscribe upstream")
	flag.IntVar(&cfg.hangups, "hangups", 250, "subscriptions the upstream drops")
	flag.Parse()
	if cfg.hangups > cfg.requests || cfg.requests <= 0 || cfg.hangups < 0 {
		fmt.Fprintln(os.Stderr, "otel: want 0 <= hangups <= requests, requests > 0")
		os.Exit(2)
	}
	exp, where, err := exporter(context.Background(), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "otel: spans go to %s\n", where)
	res, err := run(os.Stderr, exp, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otel:", err)
		os.Exit(1)
	}
	if res.leaked != cfg.hangups {
		fmt.Fprintf(os.Stderr, "otel: %d leaks found, %d expected\n", res.leaked, cfg.hangups)
		os.Exit(1)
	}
}

// exporter is OTLP/HTTP when the standard environment names an endpoint
// (the exporter reads the rest of its settings from the environment too),
// else JSON lines to w.
func exporter(ctx context.Context, w io.Writer) (sdktrace.SpanExporter, string, error) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if ep := os.Getenv(v); ep != "" {
			exp, err := otlptracehttp.New(ctx)
			if u, perr := url.Parse(ep); perr == nil {
				ep = u.Redacted() // an endpoint may carry a user and password
			} else {
				ep = v
			}
			return exp, "OTLP/HTTP " + ep, err
		}
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	return exp, "standard output", err
}

type config struct {
	requests, hangups int
}

type result struct {
	leaked   int
	requests []trace.SpanContext // the request spans, in order
}

func run(out io.Writer, exp sdktrace.SpanExporter, cfg config) (result, error) {
	var res result
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName("connleak-example-relay"))),
	)
	// Shut down last: it exports what the batcher still holds, the leak
	// and resolved spans included.
	defer tp.Shutdown(context.Background())

	// In production keep the defaults (1 s poll, 30 s grace); the demo is
	// in a hurry.
	const grace = 300 * time.Millisecond
	tr := tracker.New(
		tracker.WithPollInterval(50*time.Millisecond),
		tracker.WithGracePeriod(grace),
		tracker.WithLogger(nil), // the spans are the report
		tracker.WithTracerProvider(tp),
	)
	defer tr.Close()

	up, err := startUpstream()
	if err != nil {
		return res, err
	}
	defer up.close()
	rl := &relay{upstream: up.addr(), dial: tr.WrapDialer(nil), sessions: make(map[*session]bool)}
	defer rl.closeAll()

	fmt.Fprintf(out, "otel: %d requests subscribe to the upstream at %s; it will drop %d of them\n",
		cfg.requests, up.addr(), cfg.hangups)
	tracer := tp.Tracer("github.com/connleak/connleak/examples/otel")
	for i := range cfg.requests {
		topic := fmt.Sprintf("news-%d", i%7)
		ctx, span := tracer.Start(context.Background(), "GET /feed",
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodGet, semconv.HTTPRoute("/feed"),
				attribute.String("feed.topic", topic)))
		err := rl.subscribe(ctx, topic)
		span.End()
		if err != nil {
			return res, fmt.Errorf("request %d: %w", i, err)
		}
		res.requests = append(res.requests, span.SpanContext())
	}

	up.drop(cfg.hangups) // the upstream restarts: these subscriptions end

	deadline := time.Now().Add(grace + 5*time.Second)
	for time.Now().Before(deadline) && len(tr.Leaks()) < cfg.hangups {
		time.Sleep(50 * time.Millisecond)
	}
	tr.Poll()
	leaks := tr.Leaks()
	res.leaked = len(leaks)
	fmt.Fprintf(out, "otel: connleak judged %d connections leaked\n", res.leaked)
	for _, g := range tracker.GroupLeaks(leaks) {
		fmt.Fprintf(out, "otel: %d leaks at %s: one %q span, linked to the requests that opened them\n",
			len(g.Leaks), g.Site, tracker.SpanLeak)
	}

	// The fix, applied: close every session. Each leak resolves, and the
	// tracker reports that with a span of its own.
	rl.closeAll()
	tr.Poll()
	fmt.Fprintf(out, "otel: sessions closed; %d tracked resources open\n", len(tr.Open()))
	return res, nil
}

// relay is the buggy feed relay: one upstream subscription per request.
type relay struct {
	upstream string
	dial     tracker.DialFunc
	mu       sync.Mutex
	sessions map[*session]bool // for fan-out; keeps every conn reachable
}

type session struct {
	conn  net.Conn
	topic string
}

// subscribe dials the upstream with the request's context, so connleak
// knows which request opened the connection, and starts its pump.
func (rl *relay) subscribe(ctx context.Context, topic string) error {
	conn, err := rl.dial(ctx, "tcp", rl.upstream)
	if err != nil {
		return err
	}
	sess := &session{conn: conn, topic: topic}
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "SUB %s\n", topic); err != nil {
		conn.Close()
		return err
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "OK") {
		conn.Close()
		return errors.Join(errors.New("upstream refused the subscription"), err)
	}
	conn.SetDeadline(time.Time{})
	rl.mu.Lock()
	rl.sessions[sess] = true
	rl.mu.Unlock()
	go rl.pump(sess, r)
	return nil
}

// pump streams the upstream's messages to the session's subscribers.
func (rl *relay) pump(sess *session, r *bufio.Reader) {
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return // BUG: the error path forgets rl.drop(sess): the conn stays in CLOSE_WAIT
		}
	}
}

func (rl *relay) drop(sess *session) {
	rl.mu.Lock()
	delete(rl.sessions, sess)
	rl.mu.Unlock()
	sess.conn.Close()
}

func (rl *relay) closeAll() {
	rl.mu.Lock()
	all := make([]*session, 0, len(rl.sessions))
	for s := range rl.sessions {
		all = append(all, s)
	}
	rl.mu.Unlock()
	for _, s := range all {
		rl.drop(s)
	}
}

// upstream stands in for the remote pub/sub service: it acknowledges each
// subscription and keeps the connection until dropped.
type upstream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln}
	u.wg.Add(1)
	go u.serve()
	return u, nil
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) serve() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SUB ") {
			c.Close()
			continue
		}
		io.WriteString(c, "OK\n")
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.mu.Unlock()
	}
}

// drop closes the first n subscriptions, as a restart would.
func (u *upstream) drop(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.conns[:n] {
		c.Close()
	}
	u.conns = u.conns[n:]
}

func (u *upstream) close() {
	u.ln.Close()
	u.wg.Wait()
	u.drop(len(u.conns))
}
