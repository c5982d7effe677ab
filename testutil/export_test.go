package testutil

import "io"

// VerifyMainForTest is VerifyTestMain without os.Exit, writing to w.
func VerifyMainForTest(m TestingM, w io.Writer, opts ...Option) int {
	return verifyMain(m, w, opts)
}
