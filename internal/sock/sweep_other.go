//go:build !linux

package sock

import (
	"errors"
	"fmt"
	"runtime"
)

// List lists the sockets of this process. It needs /proc and socket
// cookies, which only Linux has; elsewhere it returns an error that wraps
// errors.ErrUnsupported.
func List() ([]Socket, error) {
	return nil, fmt.Errorf("the process sweep reads /proc/self/fd, which %s does not have: %w",
		runtime.GOOS, errors.ErrUnsupported)
}
