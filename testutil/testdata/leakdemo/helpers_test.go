package leakdemo

import (
	"net"
	"sync"
	"testing"
	"time"
)

// startServer starts a plain (unwrapped) TCP server that accepts and holds
// connections; stop closes the listener and every accepted connection, and
// runs at the latest when the test's cleanups run.
func startServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		conns      []net.Conn
		acceptDone = make(chan struct{})
	)
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Accept what is still queued first (Accept stops at the
			// deadline), so that every client sees this side close and goes
			// to CLOSE_WAIT, rather than being reset from the queue.
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Millisecond))
			<-acceptDone
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// waitFor waits for ch to close, at most d.
func waitFor(t *testing.T, ch <-chan struct{}, d time.Duration) {
	select {
	case <-ch:
	case <-time.After(d):
		t.Log("waitFor: timed out")
	}
}

// keep holds leaked connections so that the garbage collector does not
// close them before they are reported.
var (
	keepMu sync.Mutex
	keep   []any
)

func hold(v any) {
	keepMu.Lock()
	keep = append(keep, v)
	keepMu.Unlock()
}
