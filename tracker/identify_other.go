//go:build !linux

package tracker

// identify: without socket cookies, the tracker's close and cleanup
// bookkeeping is what tells a reused descriptor from the original.
func (r *record) identify() bool {
	return r.sock.ok && State(r.state.Load()) != StateClosed
}
