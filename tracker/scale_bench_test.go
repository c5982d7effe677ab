package tracker

import (
	"net"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// The scale benchmarks hold 10,000 healthy tracked loopback connections,
// their server side in a child process (see TestPeerProcess). Compare each
// case with its baseline from the same run:
//
//	go test -run '^$' -bench 'PollTick|TrackedConnMemory' -benchmem -count 5 ./tracker
//
// The bars: one poll tick at 10,000 connections ≤ 0.1 ms, and at
// most 512 bytes per tracked connection.

// quietTracker makes a tracker whose poller never fires on its own.
func quietTracker(tb testing.TB, opts ...Option) *Tracker {
	tr := New(append([]Option{WithPollInterval(time.Hour), WithLogger(nil)}, opts...)...)
	tb.Cleanup(func() { tr.Close() })
	return tr
}

// wrapAll wraps every conn with tr and returns the wrappers, which must stay
// reachable: a dropped wrapper is reported collected.
func wrapAll(tr *Tracker, conns []net.Conn) []net.Conn {
	out := make([]net.Conn, len(conns))
	for i, c := range conns {
		out[i] = tr.WrapConn(c)
	}
	return out
}

// releaseAll ends tracking of every wrapper without closing its socket.
func releaseAll(wrapped []net.Conn) {
	for _, w := range wrapped {
		r := w.(trackedConn).tracked()
		r.t.release(r, 0)
	}
}

// BenchmarkPollTick measures one detection tick (Poll) with 10,000 healthy
// tracked connections: on the epoll engine between full sweeps, on the
// epoll engine at its default full-sweep rate (amortized), with 100 leaked
// connections among the 10,000, and on the per-connection TCP_INFO sweep
// that the epoll engine replaces. The baseline is a tick with nothing
// tracked.
func BenchmarkPollTick(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("the epoll engine is Linux-only")
	}
	p := startPeer(b)
	conns := p.dialRaw(b, scaleConns)

	tick := func(tr *Tracker) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr.Poll()
			}
		}
	}
	b.Run("conns=0/epoll", tick(quietTracker(b, WithFullSweepEvery(0))))

	epoll := quietTracker(b, WithFullSweepEvery(0))
	keepEpoll := wrapAll(epoll, conns)
	epoll.Poll() // registers them
	b.Run("conns=10000/epoll", tick(epoll))
	releaseAll(keepEpoll)

	def := quietTracker(b) // full sweep every DefaultFullSweepEvery polls
	keepDef := wrapAll(def, conns)
	def.Poll() // registers them
	b.Run("conns=10000/epoll-default-full-sweep", tick(def))
	releaseAll(keepDef)

	sweep := quietTracker(b, withSweepOnly())
	keepSweep := wrapAll(sweep, conns)
	sweep.Poll() // registers them
	b.Run("conns=10000/sweep", tick(sweep))
	releaseAll(keepSweep)

	// 100 connections leaked among 10,000: already reported, judged again
	// on every tick.
	leaky := quietTracker(b, WithFullSweepEvery(0), WithGracePeriod(0))
	keepLeaky := wrapAll(leaky, conns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	for range 100 {
		c, err := leaky.WrapDialer(nil)(b.Context(), "tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(leaky.Leaks()) < 100 && time.Now().Before(deadline) {
		leaky.Poll()
		time.Sleep(time.Millisecond)
	}
	if n := len(leaky.Leaks()); n != 100 {
		b.Fatalf("%d of 100 leaks detected", n)
	}
	b.Run("conns=10000+100leaked/epoll", tick(leaky))
	releaseAll(keepLeaky)
}

// heapBytes returns the bytes of live heap objects plus the runtime's
// metadata outside the heap (where AddCleanup keeps its records), after a
// full collection.
func heapBytes() (heap, other uint64) {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/metadata/other:bytes"},
	}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// BenchmarkTrackedConnMemory measures the memory the tracker adds per
// connection at 10,000 tracked connections opened at one site: its record,
// wrapper, registry and engine entries, cleanup and interned stack share
// (B/conn), next to the memory of the raw connection itself measured the
// same way (raw-B/conn). One op wraps 10,000 connections.
func BenchmarkTrackedConnMemory(b *testing.B) {
	p := startPeer(b)
	h0, o0 := heapBytes()
	conns := p.dialRaw(b, scaleConns)
	h1, o1 := heapBytes()
	raw := float64(h1+o1-h0-o0) / scaleConns

	var total float64
	n := 0
	for b.Loop() {
		tr := quietTracker(b)
		b.StopTimer()
		h0, o0 := heapBytes()
		b.StartTimer()
		wrapped := wrapAll(tr, conns)
		tr.Poll() // registers them
		b.StopTimer()
		h1, o1 := heapBytes()
		total += (float64(h1) + float64(o1) - float64(h0) - float64(o0)) / scaleConns
		n++
		runtime.KeepAlive(wrapped)
		releaseAll(wrapped)
		tr.Close()
		b.StartTimer()
	}
	b.ReportMetric(total/float64(n), "B/conn")
	b.ReportMetric(raw, "raw-B/conn")
}

// BenchmarkDialAcceptCloseRegistered is BenchmarkDialAcceptClose for a
// connection that lives across a poll tick: the tick registers its socket
// with epoll (and probes it once), and Close deregisters it. The raw case
// runs the same tick on a tracker with nothing to register, so the
// difference is the whole cost of watching one long-lived connection.
func BenchmarkDialAcceptCloseRegistered(b *testing.B) {
	benchDialModes(b, true)
}
