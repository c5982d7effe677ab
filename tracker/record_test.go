package tracker

import (
	"io"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A record is allocated for every tracked connection: it must stay in the
// runtime's 256-byte size class, or the memory bar of 512 B per connection
// (the record, the wrapper and the registry's share) goes. Its class also
// aligns it on cache lines, which its layout counts on (see
// TestRecordLinesKeepTheIOPathApart): a record of 240 bytes or less would
// fall into a smaller class, and out of line.
func TestRecordFitsItsSizeClass(t *testing.T) {
	size := unsafe.Sizeof(record{})
	assert.LessOrEqual(t, size, uintptr(256))
	assert.Greater(t, size, uintptr(240), "a smaller class would break the record's cache-line layout")
}

// What a connection's Read and Write read sits in the record's first cache
// line, and nothing written at every request does: a client's connection
// is read and written on net/http's loops, and linked to each body on the
// caller's core. The Write's own count is in a line of its own too.
func TestRecordLinesKeepTheIOPathApart(t *testing.T) {
	var r record
	line := func(off uintptr) uintptr { return off / 64 }
	for name, off := range map[string]uintptr{
		"t": unsafe.Offsetof(r.t), "openedAt": unsafe.Offsetof(r.openedAt),
		"lastIO": unsafe.Offsetof(r.lastIO), "state": unsafe.Offsetof(r.state),
		"needFirstIO": unsafe.Offsetof(r.needFirstIO), "closing": unsafe.Offsetof(r.closing),
	} {
		assert.Zero(t, line(off), "%s is read by every Read and Write", name)
	}
	for name, off := range map[string]uintptr{
		"heldBy": unsafe.Offsetof(r.heldBy), "holds": unsafe.Offsetof(r.holds),
	} {
		assert.NotZero(t, line(off), "%s is written at every request", name)
		assert.NotEqual(t, line(unsafe.Offsetof(r.writing)), line(off), "writing shares a line with %s", name)
	}
	assert.NotZero(t, line(unsafe.Offsetof(r.writing)), "writing is written by every Write")

	// The tracker's tick, read by every Read and Write, and its id counter,
	// written at every Track and Reopen, share no line wherever the tracker
	// lies.
	var tr Tracker
	assert.GreaterOrEqual(t, unsafe.Offsetof(tr.nextID), unsafe.Offsetof(tr.tick)+64)
}

// A connection's LastIO is when its last Read or Write was: to within a
// poll interval while its peer is there, which spares each I/O a clock
// read, and exactly once the peer has closed, when each I/O restarts the
// grace period.
func TestLastIO(t *testing.T) {
	tr, _ := newTestTracker(t, WithGracePeriod(time.Hour)) // it polls when told to
	c, s := dialPair(t, tr)
	assert.True(t, connOpen(t, tr).LastIO.IsZero(), "no I/O yet")

	write := func() (before, after time.Time) {
		t.Helper()
		before = time.Now()
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		return before, time.Now()
	}
	write()
	r := connOpen(t, tr)
	assert.Equal(t, r.OpenedAt, r.LastIO, "with no poll since it opened, its open time dates it")

	time.Sleep(20 * time.Millisecond)
	polled := time.Now()
	tr.Poll()
	time.Sleep(20 * time.Millisecond)
	_, wrote := write()
	lastIO := connOpen(t, tr).LastIO
	assert.False(t, lastIO.Before(polled), "dated by the poll before it")
	assert.True(t, lastIO.Before(wrote.Add(-10*time.Millisecond)), "not by the clock: %v after the poll", lastIO.Sub(polled))

	_, err := io.ReadFull(s, make([]byte, 2)) // read, so that its Close sends a FIN, not a reset
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return connOpen(t, tr).State == StatePeerClosed }))
	time.Sleep(20 * time.Millisecond)
	before, after := write()
	lastIO = connOpen(t, tr).LastIO
	assert.False(t, lastIO.Before(before), "a Write to a closed peer is dated exactly")
	assert.False(t, lastIO.After(after))
}
