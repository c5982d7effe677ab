//go:build !unix

package tracker

// softFDLimit is 0: this system has no RLIMIT_NOFILE.
func softFDLimit() uint64 { return 0 }
