package tracker

// withSweepOnly makes the tracker probe every socket on every tick, as
// systems without the epoll engine do: the baseline the benchmarks compare
// against.
func withSweepOnly() Option {
	return optionFunc(func(c *config) error { c.sweepOnly = true; return nil })
}
