package tracker

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes the trackers it makes; a poller left running fails the
// package.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
