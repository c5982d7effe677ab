package nethttp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its trackers, servers and idle connections: a goroutine
// left behind fails the package.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
