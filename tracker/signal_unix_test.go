//go:build unix

package tracker

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// SIGUSR1 is the default signal; the report is written to the writer, and
// Close stops listening (goleak, in TestMain, checks the goroutine ends).
func TestSignalDump(t *testing.T) {
	var out lockedBuffer
	tr, _ := newTestTracker(t, WithSignalDump(&out))
	assert.Equal(t, []os.Signal{syscall.SIGUSR1}, tr.cfg.dumpOn)
	dialPair(t, tr)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "\nopen: 1\n") },
		5*time.Second, time.Millisecond)
	assert.Contains(t, out.String(), "connleak report at ")
	require.NoError(t, tr.Close())
}
