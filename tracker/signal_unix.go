//go:build unix

package tracker

import (
	"os"
	"syscall"
)

var defaultDumpSignals = []os.Signal{syscall.SIGUSR1}
