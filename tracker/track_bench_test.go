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
