// Command httpserver shows a leak that net/http cannot see: a connection
// hijacked from the server and then forgotten.
//
// A chat server upgrades GET /chat to a line protocol of its own by
// hijacking the connection, and keeps every session in a room so that it
// can broadcast. Its handler closes a session's connection when the client
// says QUIT, but on the error path (the client simply hung up) it returns
// without closing it: the room still holds the connection, which sits in
// CLOSE_WAIT until the process runs out of file descriptors. net/http has
// forgotten it since the hijack, so nothing in net/http can say which line
// took it. The server runs on a tracked listener, made ready by
// nethttp.WrapServer, and connleak names the line that hijacked it. An
// operator's port on loopback serves the health check and the debug page
// (nethttp.DebugHandler), apart from the service's own.
//
//	go run ./examples/httpserver
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

func main() {
	if _, err := run(os.Stdout, config{clients: 40, hangups: 25}); err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

type config struct {
	clients, hangups int
}

type result struct {
	leaks    []tracker.Leak      // connections connleak judged leaked
	health   string              // what GET /healthz answered with the leaks open
	debug    nethttp.DebugReport // what the debug page showed then
	resolved int                 // leaks resolved once the room was closed
}

func run(out io.Writer, cfg config) (result, error) {
	var res result
	const grace = 300 * time.Millisecond
	var (
		resolvedMu sync.Mutex
		resolved   int
	)
	// In production keep the defaults (1 s poll, 30 s grace); the demo is in
	// a hurry.
	tr := tracker.New(
		tracker.WithPollInterval(50*time.Millisecond),
		tracker.WithGracePeriod(grace),
		tracker.WithLogger(nil), // the demo prints its own report
		tracker.WithOnResolved(func(tracker.Leak) { resolvedMu.Lock(); resolved++; resolvedMu.Unlock() }),
	)
	defer tr.Close()

	ln, err := nethttp.Listen("tcp", "127.0.0.1:0", nethttp.WithTracker(tr))
	if err != nil {
		return res, err
	}
	room := &room{sessions: make(map[*session]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat", room.chat)
	srv := nethttp.WrapServer(&http.Server{
		Handler:           nethttp.Middleware(mux, nethttp.WithTracker(tr)),
		ReadHeaderTimeout: 5 * time.Second,
	}, nethttp.WithTracker(tr))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close() // closes the listener and net/http's own connections, not hijacked ones
		<-served
		room.close()
	}()
	// The operator's port: a second listener, on loopback only, for the
	// health check and the debug page. The page shows addresses and stacks:
	// it never goes on the service's own port.
	opLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	opSrv := &http.Server{Handler: operatorMux(tr), ReadHeaderTimeout: 5 * time.Second}
	go opSrv.Serve(opLn)
	defer opSrv.Close()
	opBase := "http://" + opLn.Addr().String()

	fmt.Fprintf(out, "httpserver: chat server on %s; %d clients join, %d of them hang up\n\n",
		ln.Addr(), cfg.clients, cfg.hangups)
	clients, err := join(ln.Addr().String(), cfg.clients)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if err != nil {
		return res, err
	}
	for _, c := range clients[:cfg.hangups] {
		c.Close() // the client goes away without saying QUIT
	}
	for _, c := range clients[cfg.hangups:] {
		fmt.Fprintln(c, "QUIT") // the others leave properly
		io.Copy(io.Discard, c)
	}

	// Wait for the grace period to pass and the poller to judge, bounded.
	deadline := time.Now().Add(grace + 5*time.Second)
	for time.Now().Before(deadline) && len(tr.Leaks()) < cfg.hangups {
		time.Sleep(50 * time.Millisecond)
	}
	tr.Poll()
	res.leaks = tr.Leaks()
	fmt.Fprintf(out, "connleak: %d leaked connections\n\n", len(res.leaks))
	for _, g := range tracker.GroupLeaks(res.leaks) {
		fmt.Fprintln(out, g)
		fmt.Fprintf(out, "The handler that hijacked these connections at %s:%d\n", g.Site.File, g.Site.Line)
		seen := g.Leaks[0].PeerCloseSeenStack.Site()
		fmt.Fprintf(out, "saw each client hang up at %s:%d (its Read returned EOF)\n", seen.File, seen.Line)
		fmt.Fprintln(out, "and returned without closing: the room still holds the connection.")
		fmt.Fprintln(out, "Fix: `defer r.leave(s)` right after the hijack, so that every path")
		fmt.Fprintln(out, "closes the connection and forgets the session.")
		fmt.Fprintln(out)
	}

	if res.health, err = get(opBase + "/healthz"); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "GET %s/healthz: %s\n", opBase, res.health)
	page, err := get(opBase + "/debug/connleak?format=json")
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal([]byte(page), &res.debug); err != nil {
		return res, fmt.Errorf("debug page: %w", err)
	}
	fmt.Fprintf(out, "GET %s/debug/connleak: %d leaks in %d groups, %d open resources (open it in a browser for the table)\n",
		opBase, res.debug.Leaks.Count, res.debug.Leaks.GroupCount, res.debug.Open.Count)

	// The fix, applied: close every session; each leak reports resolved.
	room.close()
	tr.Poll()
	resolvedMu.Lock()
	res.resolved = resolved
	resolvedMu.Unlock()
	fmt.Fprintf(out, "After closing the room: %d of %d leaks resolved.\n", res.resolved, len(res.leaks))
	return res, nil
}

// operatorMux serves what an operator reads: the tracker's health, and the
// debug page, text for curl and a table for a browser.
func operatorMux(tr *tracker.Tracker) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := tr.Health()
		fmt.Fprintf(w, "%s, %d connections in CLOSE_WAIT", h.Status, h.CloseWait)
		for _, r := range h.Reasons {
			fmt.Fprintf(w, "; %s", r)
		}
	})
	mux.Handle("GET /debug/connleak", nethttp.DebugHandler(tr))
	return mux
}

// room is the buggy chat server: every session, for broadcasts.
type room struct {
	mu       sync.Mutex
	sessions map[*session]bool // keeps every hijacked connection reachable
	closed   bool
}

type session struct {
	conn net.Conn
	name string
}

// chat upgrades the request to the chat protocol: one line per message,
// QUIT to leave.
func (r *room) chat(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Upgrade") != "chat" {
		http.Error(w, "upgrade to chat", http.StatusUpgradeRequired)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack() // connleak: the hijack
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s := &session{conn: conn, name: req.URL.Query().Get("name")}
	if !r.join(s) {
		conn.Close()
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n")
	brw.WriteString("WELCOME " + s.name + "\n")
	if brw.Flush() != nil {
		r.leave(s)
		return
	}
	for {
		line, err := brw.ReadString('\n') // connleak: the read that sees the hang-up
		if err != nil {
			return // BUG: the error path forgets r.leave(s): the connection stays in the room, in CLOSE_WAIT
		}
		switch msg := strings.TrimSpace(line); msg {
		case "QUIT":
			r.leave(s)
			return
		default:
			r.broadcast(s.name + ": " + msg)
		}
	}
}

func (r *room) join(s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.sessions[s] = true
	return true
}

// leave closes the session's connection and forgets it.
func (r *room) leave(s *session) {
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
	s.conn.Close()
}

func (r *room) broadcast(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.sessions {
		s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		fmt.Fprintln(s.conn, msg)
	}
}

func (r *room) close() {
	r.mu.Lock()
	r.closed = true
	sessions := make([]*session, 0, len(r.sessions))
	for s := range r.sessions {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	for _, s := range sessions {
		r.leave(s)
	}
}

// join connects n clients to the chat and waits for each to be welcome.
func join(addr string, n int) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /chat?name=guest%d HTTP/1.1\r\nHost: chat\r\nUpgrade: chat\r\nConnection: Upgrade\r\n\r\n", i)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return conns, fmt.Errorf("client %d: %w", i, err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return conns, fmt.Errorf("client %d: %s", i, resp.Status)
		}
		if welcome, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(welcome, "WELCOME") {
			return conns, fmt.Errorf("client %d: no welcome (%q, %v)", i, welcome, err)
		}
	}
	return conns, nil
}

// get fetches url and returns its body.
func get(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && err == nil {
		err = errors.New(resp.Status)
	}
	return string(b), err
}
