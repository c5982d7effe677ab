//go:build unix

package tracker

import "golang.org/x/sys/unix"

// softFDLimit returns the soft RLIMIT_NOFILE, or 0 when unlimited or
// unknown.
func softFDLimit() uint64 {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || lim.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return uint64(lim.Cur)
}
