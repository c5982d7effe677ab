package tracker

import "net"

// withSweepOnly makes the tracker probe every socket on every tick, as
// systems without the epoll engine do: the baseline the benchmarks compare
// against.
func withSweepOnly() Option {
	return optionFunc(func(c *config) error { c.sweepOnly = true; return nil })
}

// idOf returns the record id of a tracked connection: its Resource.ID.
func idOf(c net.Conn) uint64 { return c.(trackedConn).tracked().id }
