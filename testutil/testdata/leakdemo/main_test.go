package leakdemo

import (
	"os"
	"testing"

	"github.com/connleak/connleak/testutil"
)

// LEAKDEMO_MAIN=verify runs the tests under testutil.VerifyTestMain with the
// goroutine check; otherwise the tests run plainly.
func TestMain(m *testing.M) {
	if os.Getenv("LEAKDEMO_MAIN") == "verify" {
		testutil.VerifyTestMain(m, testutil.WithGoroutines())
	}
	os.Exit(m.Run())
}
