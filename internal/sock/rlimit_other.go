//go:build !unix

package sock

// SoftFDLimit is 0: this system has no RLIMIT_NOFILE.
func SoftFDLimit() uint64 { return 0 }
