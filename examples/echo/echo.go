// Package echo is the code under test of the testutil examples: a line echo
// server and its client. The client has the classic bug: one error path
// returns without closing the connection it dialed.
//
// Its tests show each form of package testutil. One of them fails on
// purpose, to show the report, and runs only when asked:
//
//	go test ./examples/echo -run TestLeakDemo -args -leakdemo
package echo

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"

	"github.com/connleak/connleak/tracker"
)

// Server echoes each line it reads back to the client.
type Server struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve starts serving on ln (give it a tracker's WrapListener to track the
// accepted connections) until Close.
func Serve(ln net.Listener) *Server {
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: it closes the listener and every connection, and
// waits for its goroutines to end.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed { // accepted while Close ran: Close has not seen it
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := c.Write([]byte(line)); err != nil {
			return
		}
	}
}

// ErrEmpty is returned for an empty message.
var ErrEmpty = errors.New("echo: empty message")

// Client sends messages to a Server, one connection per message.
type Client struct {
	dial tracker.DialFunc
	addr string
}

// NewClient makes a client that dials addr with dial (give it a tracker's
// WrapDialer to track its connections).
func NewClient(dial tracker.DialFunc, addr string) *Client {
	return &Client{dial: dial, addr: addr}
}

// Echo sends msg and returns the server's reply.
func (c *Client) Echo(ctx context.Context, msg string) (string, error) {
	conn, err := c.dial(ctx, "tcp", c.addr)
	if err != nil {
		return "", err
	}
	if msg == "" {
		return "", ErrEmpty // the bug: conn is never closed on this path
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return reply[:len(reply)-1], nil
}
