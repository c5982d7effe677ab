package tracker

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// Compare each tracked case with its raw twin from the same run:
//
//	go test -run '^$' -bench 'Echo|DialAcceptClose' -benchmem -count 5 ./tracker
//
// The bars are time ratios of ≤ 1.03 for Read/Write and ≤ 1.05
// for dial+accept+close, with no allocation added on the I/O path.

// BenchmarkEcho writes a message through a loopback connection to an echo
// server and reads it back, on a raw and on a wrapped client conn.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, mode := range []string{"raw", "wrapped"} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, mode), func(b *testing.B) {
				benchEcho(b, size, mode == "wrapped")
			})
		}
	}
}

// benchSetup makes a quiet tracker and a loopback listener, both closed when
// the benchmark ends.
func benchSetup(b *testing.B, opts ...Option) (*Tracker, net.Listener) {
	tr := New(append([]Option{WithPollInterval(time.Hour), WithLogger(nil)}, opts...)...)
	b.Cleanup(func() { tr.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return tr, ln
}

func benchEcho(b *testing.B, size int, wrapped bool) {
	tr, ln := benchSetup(b)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	if wrapped {
		c = tr.WrapConn(c)
	}
	defer c.Close()
	msg := make([]byte, size)
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDialAcceptClose dials, accepts and closes one loopback
// connection, with the dialing side raw or tracked.
func BenchmarkDialAcceptClose(b *testing.B) {
	benchDialModes(b, false)
}

// benchDialModes runs the dial cycle with the dialing side raw, then
// tracked; with poll, each cycle runs a poll tick while the conn is open.
func benchDialModes(b *testing.B, poll bool) {
	for _, mode := range []string{"raw", "tracked"} {
		b.Run(mode, func(b *testing.B) {
			tr, ln := benchSetup(b)
			var d net.Dialer
			dial := DialFunc(d.DialContext)
			if mode == "tracked" {
				dial = tr.WrapDialer(dial)
			}
			var between func()
			if poll {
				between = tr.Poll
			}
			cycle := newDialCycle(b, ln)
			b.ReportAllocs()
			for b.Loop() {
				cycle.run(dial, between)
			}
		})
	}
}

// dialCycle dials, accepts and closes one loopback connection per run: the
// unit of the dial benchmarks.
type dialCycle struct {
	b    *testing.B
	ctx  context.Context
	ln   net.Listener
	addr string
}

func newDialCycle(b *testing.B, ln net.Listener) dialCycle {
	return dialCycle{b: b, ctx: b.Context(), ln: ln, addr: ln.Addr().String()}
}

// run dials with dial, accepts, calls between (if any) while both ends are
// open, and closes both.
func (d dialCycle) run(dial DialFunc, between func()) {
	c, err := dial(d.ctx, "tcp", d.addr)
	if err != nil {
		d.b.Fatal(err)
	}
	s, err := d.ln.Accept()
	if err != nil {
		d.b.Fatal(err)
	}
	if between != nil {
		between()
	}
	c.Close()
	s.Close()
}

// BenchmarkWrapClose measures the tracker's own work for a connection that
// is wrapped and closed between two polls, without the socket's system calls:
// the wrapper, the record, the open-site stack, the registry and the
// collection watch. The connection itself stays open.
func BenchmarkWrapClose(b *testing.B) {
	tr, ln := benchSetup(b)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	b.ReportAllocs()
	for b.Loop() {
		w := tr.WrapConn(c)
		r := w.(trackedConn).tracked()
		tr.release(r, 0)
	}
}
