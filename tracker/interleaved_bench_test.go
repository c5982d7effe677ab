package tracker

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// The raw-versus-tracked benchmarks of bench_test.go run the two cases one
// after the other, so that anything else on the machine during either run
// moves their ratio by more than the few percent being measured. The
// benchmarks here interleave the two: each op runs the raw case and the
// tracked case once, in alternating order, timing each, and report the two
// times per op and their ratio (tracked/raw).
//
//	go test -run '^$' -bench Interleaved -count 5 ./tracker

// interleave runs raw and tracked once per op, alternating which goes first,
// and reports raw-ns/op, tracked-ns/op and tracked/raw, and the ratio of the
// two cases' median op times (median-ratio), which one op stalled for
// milliseconds by a neighbour on the machine does not move.
func interleave(b *testing.B, raw, tracked func()) {
	var tRaw, tTracked time.Duration
	var opsRaw, opsTracked []time.Duration
	n := 0
	for b.Loop() {
		var dRaw, dTracked time.Duration
		if n%2 == 0 {
			t0 := time.Now()
			raw()
			t1 := time.Now()
			tracked()
			dTracked, dRaw = time.Since(t1), t1.Sub(t0)
		} else {
			t0 := time.Now()
			tracked()
			t1 := time.Now()
			raw()
			dRaw, dTracked = time.Since(t1), t1.Sub(t0)
		}
		tRaw += dRaw
		tTracked += dTracked
		opsRaw = append(opsRaw, dRaw)
		opsTracked = append(opsTracked, dTracked)
		n++
	}
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tTracked.Nanoseconds())/float64(n), "tracked-ns/op")
	b.ReportMetric(float64(tTracked)/float64(tRaw), "tracked/raw")
	b.ReportMetric(float64(median(opsTracked))/float64(median(opsRaw)), "median-ratio")
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkInterleavedDialAcceptClose: dial, accept and close one loopback
// connection, the dialing side raw or tracked (closed before the next poll,
// as most short connections are).
func BenchmarkInterleavedDialAcceptClose(b *testing.B) {
	tr, ln := benchSetup(b)
	var d net.Dialer
	rawDial := DialFunc(d.DialContext)
	trackedDial := tr.WrapDialer(rawDial)
	cycle := newDialCycle(b, ln)
	interleave(b,
		func() { cycle.run(rawDial, nil) },
		func() { cycle.run(trackedDial, nil) })
}

// BenchmarkInterleavedEcho: write a message to a loopback echo server and
// read it back, on a raw and on a wrapped client connection.
func BenchmarkInterleavedEcho(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		name := "4KiB"
		if size == 64<<10 {
			name = "64KiB"
		}
		b.Run(name, func(b *testing.B) {
			tr, ln := benchSetup(b)
			dial := echoServer(b, ln)
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			interleave(b, echoer(b, dial(), size), echoer(b, tr.WrapConn(dial()), size))
		})
	}
}

// echoServer serves an echo on ln until it is closed, and returns a dial
// of it whose connections are closed when the benchmark ends.
func echoServer(b *testing.B, ln net.Listener) func() net.Conn {
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(s, s); s.Close() }()
		}
	}()
	return func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
}

// echoer returns one echo of a size-byte message over c.
func echoer(b *testing.B, c net.Conn, size int) func() {
	msg := make([]byte, size)
	buf := make([]byte, size)
	return func() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInterleavedDialAcceptCloseRegistered: the same for a connection
// that lives across a poll tick, which registers it with epoll (Linux) and
// probes it once; its Close deregisters it. The raw case runs the same tick
// on a tracker with nothing to register.
func BenchmarkInterleavedDialAcceptCloseRegistered(b *testing.B) {
	tr, ln := benchSetup(b)
	idle := quietTracker(b)
	var d net.Dialer
	rawDial := DialFunc(d.DialContext)
	trackedDial := tr.WrapDialer(rawDial)
	cycle := newDialCycle(b, ln)
	interleave(b,
		func() { cycle.run(rawDial, idle.Poll) },
		func() { cycle.run(trackedDial, tr.Poll) })
}
