package testutil_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/connleak/connleak/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The baseline knows sockets by cookie: a socket opened after it on the
// descriptor numbers, and with the addresses, of one in it is reported.
func TestProcessSocketsBaselineByCookie(t *testing.T) {
	old, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	ignore := []testutil.Option{testutil.IgnoreCurrent(), testutil.WithProcessSockets()}
	syscall.Close(old[0])
	syscall.Close(old[1])
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	if fds != old {
		t.Skipf("the new pair has descriptors %v, not the old pair's %v", fds, old)
	}

	rec := &recorder{name: t.Name()}
	testutil.VerifyNone(rec, append(ignore, testutil.WithTracker(newTracker(t)), testutil.WithTimeout(0))...)
	t.Log(rec.text())
	for _, fd := range fds {
		assert.Regexp(t, fmt.Sprintf(`\n    socket unix[^\n]* \(fd %d\)\n`, fd), rec.text()+"\n")
	}
}
