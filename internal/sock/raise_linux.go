//go:build linux

package sock

import "golang.org/x/sys/unix"

// RaiseFDLimit raises the soft RLIMIT_NOFILE to want when the hard limit
// allows (Go already raises it to the hard limit at start), and the hard
// limit too when the process may (root, CAP_SYS_RESOURCE). It returns the
// soft limit now in force. Tests and benchmarks that hold many sockets use
// it.
func RaiseFDLimit(want uint64) uint64 {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	if lim.Max < want {
		raised := unix.Rlimit{Cur: want, Max: want}
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
			return want
		}
	}
	lim.Cur = lim.Max
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
		unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}
