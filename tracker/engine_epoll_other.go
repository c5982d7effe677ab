//go:build !linux

package tracker

// newEngine is the per-connection sweep on systems without the Linux epoll
// engine: TCP_CONNECTION_INFO on macOS, recv(MSG_PEEK) on other Unix
// systems, and the program's own Reads elsewhere.
func newEngine(*config) engine { return newSweepEngine() }
