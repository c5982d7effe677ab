//go:build unix

package sock

import "golang.org/x/sys/unix"

// SoftFDLimit returns the soft RLIMIT_NOFILE, or 0 when unlimited or
// unknown.
func SoftFDLimit() uint64 {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || lim.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return uint64(lim.Cur)
}
