package tracker

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteReport(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket probe on windows")
	}
	tr, _ := newTestTracker(t, WithThresholds(Thresholds{CloseWaitWarning: 1}))
	for range 3 {
		dialPair(t, tr)
	}
	peerClose(t, tr, 2)
	tr.Poll()
	var b bytes.Buffer
	require.NoError(t, tr.WriteReport(&b))
	out := b.String()
	t.Log(out)
	assert.Contains(t, out, "health warning\n  - 2 connections in CLOSE_WAIT: more than 1\n")
	assert.Contains(t, out, "\nleaks: 2\n2 leaks of conn: peer closed, never closed here\n")
	assert.Contains(t, out, "\nopen: 5\n")
	assert.Contains(t, out, "(3 active)\n")
	assert.Contains(t, out, "(2 peer-closed)\n")
	assert.True(t, strings.Contains(out, "helpers_test.go"), "groups name the user's line")
	if runtime.GOOS == "linux" {
		assert.Contains(t, out, "\nprocess sockets not tracked: ")
		assert.Contains(t, out, "tcp LISTEN\n")
	}
}
