package tracker

import (
	"testing"
	"time"
)

// BenchmarkTrackClose measures Track and Close of one resource at one site,
// as an integration does for every response body or query: the record, the
// open-site stack, the registry and the collection watch, and their undoing.
//
//	go test -run '^$' -bench TrackClose -benchmem -count 6 ./tracker
func BenchmarkTrackClose(b *testing.B) {
	tr := New(WithPollInterval(time.Hour), WithLogger(nil))
	b.Cleanup(func() { tr.Close() })
	opts := []TrackOption{TrackCallerSkip(1)}
	b.ReportAllocs()
	for b.Loop() {
		tr.Track("bench", opts...).Close()
	}
}

// BenchmarkReopenClose measures a Handle re-armed by Reopen and closed, as a
// pool does for each checkout of one connection: against BenchmarkTrackClose,
// what the reuse saves.
//
//	go test -run '^$' -bench 'TrackClose|ReopenClose' -benchmem -count 6 ./tracker
func BenchmarkReopenClose(b *testing.B) {
	tr := New(WithPollInterval(time.Hour), WithLogger(nil))
	b.Cleanup(func() { tr.Close() })
	opts := []TrackOption{TrackCallerSkip(1)}
	h := tr.Track("bench", opts...)
	b.ReportAllocs()
	for b.Loop() {
		h = h.Reopen(opts...)
		h.Close()
	}
}

// BenchmarkReopenCloseParallel is BenchmarkReopenClose on every core at
// once, a Handle each, as a server's concurrent requests or a client's
// concurrent responses re-arm theirs: a Reopen that fell back to a new
// Handle would show as allocations.
func BenchmarkReopenCloseParallel(b *testing.B) {
	tr := New(WithPollInterval(time.Hour), WithLogger(nil))
	b.Cleanup(func() { tr.Close() })
	opts := []TrackOption{TrackCallerSkip(1)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		h := tr.Track("bench", opts...)
		for pb.Next() {
			h = h.Reopen(opts...)
			h.Close()
		}
	})
}
