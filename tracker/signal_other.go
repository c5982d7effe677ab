//go:build !unix

package tracker

import "os"

// defaultDumpSignals is empty: this system has no SIGUSR1.
var defaultDumpSignals []os.Signal
