// Package leakdemo is a small package whose tests leak on purpose. The tests
// of package testutil copy it into a temporary module, build its tests once,
// run them one scenario at a time and check what each run reports.
//
// Lines that the checks look for carry a "LINE:" marker comment.
package leakdemo

import (
	"context"
	"net"
)

// Connect dials addr with dial: the production code under test.
func Connect(dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string) (net.Conn, error) {
	return dial(context.Background(), "tcp", addr) // LINE:connect
}
