//go:build !linux

package tracker

import (
	"errors"
	"fmt"
	"runtime"
)

// ProcessSockets lists the sockets of this process. It needs /proc and
// socket cookies, which only Linux has; elsewhere it returns an error that
// wraps errors.ErrUnsupported.
func (t *Tracker) ProcessSockets() ([]Socket, error) {
	return nil, fmt.Errorf("connleak/tracker: the process sweep reads /proc/self/fd, which %s does not have: %w",
		runtime.GOOS, errors.ErrUnsupported)
}
