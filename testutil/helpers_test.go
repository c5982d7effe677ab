package testutil_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/require"
)

// recorder is a TestingT that keeps what it was told, named like a test.
type recorder struct {
	mu     sync.Mutex
	name   string
	errors []string
	logs   []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Error makes recorder a goleak.TestingT too.
func (r *recorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprint(args...))
}

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) failed() bool { return len(r.errors) > 0 }

func (r *recorder) text() string { return strings.Join(r.errors, "\n") }

// newTracker makes a tracker for one test, closed at its end, that polls only
// when asked.
func newTracker(t *testing.T) *tracker.Tracker {
	tr := tracker.New(tracker.WithLogger(nil), tracker.WithPollInterval(time.Hour))
	t.Cleanup(func() { tr.Close() })
	return tr
}

// server is a plain loopback listener that accepts and keeps connections
// until hangUp or the end of the test.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newServer(t *testing.T) *server { return newServerTB(t) }

func newServerTB(t testing.TB) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.hangUp)
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// hangUp closes every connection and the listener. It first accepts what is
// still queued (Accept stops at a deadline a little later), so that every
// client that dialed sees this side close, in CLOSE_WAIT, rather than a
// reset of a connection that was never accepted.
func (s *server) hangUp() {
	s.ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Millisecond))
	<-s.done
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func dial(t *testing.T, tr *tracker.Tracker, addr string) net.Conn {
	t.Helper()
	return dialTB(t, tr, addr)
}

func dialTB(t testing.TB, tr *tracker.Tracker, addr string) net.Conn {
	t.Helper()
	c, err := tr.WrapDialer(nil)(context.Background(), "tcp", addr)
	require.NoError(t, err)
	return c
}

// collectedOf is the part of tr.Leaks() collected without Close.
func collectedOf(tr *tracker.Tracker) []tracker.Leak {
	var out []tracker.Leak
	for _, l := range tr.Leaks() {
		if l.Reason == tracker.ReasonCollected {
			out = append(out, l)
		}
	}
	return out
}
