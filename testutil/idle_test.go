package testutil_test

import (
	"testing"
	"time"

	"github.com/connleak/connleak/testutil"
	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pooled connection idle in its pool when its server closes it is the
// pool's hygiene: the tracker reports it with ReasonIdleInPool, and the
// test passes, though the connection is still open at its end. The same
// connection checked out fails the test.
func TestIdleInPoolNeverFails(t *testing.T) {
	tr := newTracker(t)
	srv := newServer(t)
	c := dial(t, tr, srv.addr())
	defer c.Close()
	pooled := tr.Track("sql.conn")
	defer pooled.Close()
	pooled.Hold(c)
	pooled.SetIdle(true)
	srv.hangUp()
	deadline := time.Now().Add(2 * time.Second)
	for !tr.PeerClosed(c) {
		require.True(t, time.Now().Before(deadline), "the server's close was never seen")
		time.Sleep(time.Millisecond)
	}
	tr.Poll()
	leaks := tr.Leaks()
	require.Len(t, leaks, 1)
	assert.Equal(t, tracker.ReasonIdleInPool, leaks[0].Reason)

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.False(t, rec.failed(), rec.text())

	pooled.SetIdle(false) // checked out: the program's again
	rec = &recorder{name: t.Name()}
	testutil.VerifyNone(rec, testutil.WithTracker(tr), testutil.WithTimeout(0))
	assert.True(t, rec.failed())
	assert.Contains(t, rec.text(), "left 2 resources still open")
}
