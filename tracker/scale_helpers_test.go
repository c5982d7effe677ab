package tracker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
)

// scaleConns is the number of tracked connections of the scale benchmarks.
const scaleConns = 10_000

// peerEnv marks the child process that serves as the peer of the scale
// benchmarks.
const peerEnv = "CONNLEAK_TEST_PEER"

// TestPeerProcess is not a test of its own: run as a child process by
// startPeer, it accepts connections on a loopback listener and holds them
// open until its standard input closes. A separate process keeps the two
// ends of 10,000 connections from needing 20,000 descriptors in one
// process, more than a common hard RLIMIT_NOFILE.
func TestPeerProcess(t *testing.T) {
	if os.Getenv(peerEnv) != "1" {
		t.Skip("the peer process of the scale benchmarks; runs only as their child")
	}
	sock.RaiseFDLimit(scaleConns + 256)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
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
	io.Copy(io.Discard, os.Stdin) // until the parent closes it, or exits
	ln.Close()
	<-done
	for _, c := range conns {
		c.Close()
	}
}

// peer is a child process holding the server side of loopback connections.
type peer struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startPeer runs TestPeerProcess in a child process of the test binary and
// stops it when tb ends.
func startPeer(tb testing.TB) *peer {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), peerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &peer{cmd: cmd, stdin: stdin}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, stdout); close(done) }()
		timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		<-done
		cmd.Wait()
		timer.Stop()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		tb.Fatalf("the peer process did not start: %q, %v", line, err)
	}
	p.addr = addr
	return p
}

// dialRaw opens n raw loopback connections to the peer, closed when tb
// ends. It skips tb when the descriptors are not available.
func (p *peer) dialRaw(tb testing.TB, n int) []net.Conn {
	tb.Helper()
	if lim := sock.RaiseFDLimit(uint64(n) + 256); lim < uint64(n)+256 {
		tb.Skipf("needs %d descriptors; the soft RLIMIT_NOFILE is %d and cannot be raised further (not root?)", n+256, lim)
	}
	conns := make([]net.Conn, 0, n)
	tb.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
		if err != nil {
			tb.Skipf("dialing connection %d of %d to the peer process: %v", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}
	return conns
}
