//go:build race

package nethttp_test

// raceEnabled: the race detector drops some of what a sync.Pool is given,
// so counts of allocations mean nothing under it.
const raceEnabled = true
