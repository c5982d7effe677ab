package testutil

import (
	"io"

	"go.uber.org/goleak"
)

// VerifyMainForTest is VerifyTestMain without os.Exit, writing to w.
func VerifyMainForTest(m TestingM, w io.Writer, opts ...Option) int {
	return verifyMain(m, w, opts)
}

// Refused is how the goroutine check tells goleak's refusal of opts from
// goroutines found with them.
func Refused(opts ...goleak.Option) bool { return refused(opts) }
