//go:build !linux

package sock

// PollShowsOpen is false: a poll for the peer's shutdown is Linux's
// (POLLRDHUP), so ProbeSocket must tell.
func PollShowsOpen(Handle) bool { return false }
