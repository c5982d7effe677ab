// Command closewait recreates a production incident and finds its cause from
// inside the process.
//
// A small pub/sub server keeps every subscriber in a session table so that it
// can broadcast to them. Its handler closes a subscriber's connection when the
// client says QUIT, but on the error path (the client simply hung up) it
// returns without closing: the socket sits in CLOSE_WAIT, held by the session
// table, until the process runs out of file descriptors. 420 clients connect;
// 250 of them hang up. `ss -tan state close-wait` would show 250 sockets and
// no line of code; connleak shows the same 250 and the line.
//
//	go run ./examples/closewait
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connleak/connleak/tracker"
)

func main() {
	res, err := run(os.Stdout, config{clients: 420, hangups: 250})
	if err != nil {
		fmt.Fprintln(os.Stderr, "closewait:", err)
		os.Exit(1)
	}
	if res.ssCount >= 0 && res.ssCount != res.leaked {
		fmt.Fprintf(os.Stderr, "closewait: connleak found %d leaks but ss shows %d sockets in CLOSE_WAIT\n", res.leaked, res.ssCount)
		os.Exit(1)
	}
}

type config struct {
	clients, hangups int
}

type result struct {
	leaked     int // connections connleak judged leaked
	closeWait  int // tracked sockets the kernel reports in CLOSE_WAIT
	ssCount    int // what `ss` counted for the server's port; -1 without ss
	leaks      []tracker.Leak
	resolvedOK bool // every leak resolved after the sessions were closed
}

func run(out io.Writer, cfg config) (result, error) {
	res := result{ssCount: -1}
	const grace = 300 * time.Millisecond
	var (
		resolvedMu sync.Mutex
		resolved   int
	)
	// In production keep the defaults (1 s poll, 30 s grace); the demo is in a
	// hurry.
	tr := tracker.New(
		tracker.WithPollInterval(50*time.Millisecond),
		tracker.WithGracePeriod(grace),
		tracker.WithLogger(nil), // the demo prints its own report
		tracker.WithOnResolved(func(tracker.Leak) { resolvedMu.Lock(); resolved++; resolvedMu.Unlock() }),
	)
	defer tr.Close()

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &server{ln: tr.WrapListener(raw), sessions: make(map[*session]bool)}
	go srv.serve()
	defer srv.shutdown()
	port := raw.Addr().(*net.TCPAddr).Port

	fmt.Fprintf(out, "closewait: pub/sub server on %s; %d clients subscribe, %d of them hang up\n\n",
		raw.Addr(), cfg.clients, cfg.hangups)
	clients, err := connectClients(raw.Addr().String(), cfg.clients)
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
	clients = clients[cfg.hangups:]

	// Wait for the grace period to pass and the poller to judge, bounded.
	deadline := time.Now().Add(grace + 5*time.Second)
	for time.Now().Before(deadline) && len(tr.Leaks()) < cfg.hangups {
		time.Sleep(50 * time.Millisecond)
	}
	tr.Poll()
	res.leaks = tr.Leaks()
	res.leaked = len(res.leaks)

	fmt.Fprintln(out, "Tracked sockets by state (the `ss -s` view, from inside the process):")
	states := map[string]int{}
	for _, r := range tr.Open() {
		st := r.SocketState
		if r.Kind == tracker.KindListener {
			st = "LISTEN"
		}
		if st == "" {
			st = "UNKNOWN"
		}
		states[st]++
	}
	res.closeWait = states["CLOSE_WAIT"]
	fmt.Fprintf(out, "  TCP: %d (%s)\n", sum(states), formatStates(states))
	if n, err := ssCloseWait(port); err == nil {
		res.ssCount = n
		fmt.Fprintf(out, "  ss -tan state close-wait '( sport = :%d )' counts %d: %s\n", port, n, agree(n, res.closeWait))
	} else {
		fmt.Fprintf(out, "  (ss not run: %v)\n", err)
	}

	fmt.Fprintf(out, "\nconnleak: %d leaked connections\n\n", res.leaked)
	for _, g := range tracker.GroupLeaks(res.leaks) {
		fmt.Fprintln(out, g)
		fmt.Fprintf(out, "The code at %s:%d saw the client hang up (Read returned EOF)\n", g.Site.Frame.File, g.Site.Frame.Line)
		fmt.Fprintln(out, "and returned without closing the connection: the error path of the")
		fmt.Fprintln(out, "handler right below that line. Fix: `defer s.drop(sess)` at the top of")
		fmt.Fprintln(out, "handle, so that every path closes the connection and forgets the session.")
		fmt.Fprintln(out)
	}

	// The fix, applied: close every session; each leak reports resolved.
	srv.shutdown()
	tr.Poll()
	resolvedMu.Lock()
	res.resolvedOK = resolved == res.leaked
	fmt.Fprintf(out, "After closing the sessions: %d of %d leaks resolved, %d tracked resources open.\n",
		resolved, res.leaked, len(tr.Open()))
	resolvedMu.Unlock()
	return res, nil
}

// server is the buggy pub/sub server.
type server struct {
	ln       net.Listener
	mu       sync.Mutex
	sessions map[*session]bool // for broadcasts; keeps every conn reachable
	closed   bool
}

type session struct {
	conn  net.Conn
	topic string
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *server) handle(conn net.Conn) {
	sess := &session{conn: conn}
	s.mu.Lock()
	s.sessions[sess] = true
	s.mu.Unlock()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n') // connleak: the handler reads here
		if err != nil {
			return // BUG: the error path forgets s.drop(sess): conn stays open in CLOSE_WAIT
		}
		switch cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " "); cmd {
		case "SUB":
			sess.topic = arg
			fmt.Fprintf(conn, "OK subscribed to %s\n", arg)
		case "QUIT":
			s.drop(sess)
			return
		default:
			fmt.Fprintf(conn, "ERR unknown command %q\n", cmd)
		}
	}
}

// drop closes the session's connection and forgets it.
func (s *server) drop(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	sess.conn.Close()
}

func (s *server) shutdown() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, sess := range sessions {
		s.drop(sess)
	}
}

// connectClients subscribes n clients and waits for each to be served.
func connectClients(addr string, n int) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "SUB news-%d\n", i%7); err != nil {
			return conns, err
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return conns, fmt.Errorf("client %d: %w", i, err)
		}
	}
	return conns, nil
}

// ssCloseWait asks ss, as an operator would, how many sockets on the
// server's port are in CLOSE_WAIT.
func ssCloseWait(port int) (int, error) {
	path, err := exec.LookPath("ss")
	if err != nil {
		return 0, errors.New("ss is not installed (iproute2)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	outb, err := exec.CommandContext(ctx, path, "-tanH", "state", "close-wait",
		fmt.Sprintf("( sport = :%d )", port)).Output()
	if err != nil {
		return 0, fmt.Errorf("ss: %w", err)
	}
	return bytes.Count(outb, []byte("\n")), nil
}

func agree(ss, ours int) string {
	if ss == ours {
		return "agrees"
	}
	return fmt.Sprintf("DISAGREES with connleak's %d", ours)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func formatStates(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", strings.ToLower(k), m[k])
	}
	return strings.Join(parts, ", ")
}
