//go:build unix

package tracker

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SIGUSR1 is the default signal; the report is written to the writer, and
// Close stops listening (goleak, in TestMain, checks the goroutine ends).
func TestSignalDump(t *testing.T) {
	var out lockedBuffer
	tr, _ := newTestTracker(t, WithSignalDump(&out))
	assert.Equal(t, []os.Signal{syscall.SIGUSR1}, tr.cfg.dumpOn)
	dialPair(t, tr)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	require.Eventually(t, func() bool { return bytes.Contains([]byte(out.String()), []byte("\nopen: 1\n")) },
		5*time.Second, time.Millisecond)
	assert.Contains(t, out.String(), "connleak report at ")
	require.NoError(t, tr.Close())
}
