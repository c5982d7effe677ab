package tracker

import "runtime"

// Handle is the tracker's record of one resource given to Track. Close it
// when the resource is closed; a Handle that is garbage-collected without
// Close is reported with ReasonCollected, so integrations keep the Handle
// inside the object whose loss means a leak (a response body, an sql.Rows).
type Handle struct {
	rec *record
}

// Track starts tracking a resource of any kind that the tracker does not
// wrap itself: an HTTP response body, an SQL transaction, a pooled
// connection checked out of a pool. The open-site stack is the caller's (see
// TrackCallerSkip), unless TrackPCs gives another. An empty kind means
// KindResource.
func (t *Tracker) Track(kind Kind, opts ...TrackOption) *Handle {
	var tc trackConfig
	tc.apply(opts)
	return t.track(kind, &tc, 1+tc.skip)
}

// track is Track for a resource opened skip frames above track's caller.
func (t *Tracker) track(kind Kind, tc *trackConfig, skip int) *Handle {
	if kind == "" {
		kind = KindResource
	}
	var r *record
	if len(tc.pcs) > 0 {
		r = t.newRecordAt(kind, tc.pcs[:min(len(tc.pcs), t.cfg.stackDepth)], 1)
	} else {
		r = t.newRecord(kind, skip+1)
	}
	tc.setOn(r)
	t.tel.attach(r, tc.span, tc.attrs)
	h := watchCollection(&Handle{rec: r}, r)
	t.register(r)
	return h
}

// setOn sets the fields of r that Track's options describe.
func (tc *trackConfig) setOn(r *record) {
	r.label = tc.label
	r.limit = tc.limit
	r.laddr, r.raddr = nil, nil
	if tc.local != "" || tc.network != "" {
		r.laddr = stringAddr{tc.network, tc.local} // carries the network even without an address
	}
	if tc.remote != "" {
		r.raddr = stringAddr{tc.network, tc.remote}
	}
}

// Close ends tracking of the resource. It is idempotent and safe on a nil
// Handle.
func (h *Handle) Close() {
	if h == nil {
		return
	}
	h.rec.t.release(h.rec, 1)
	// Until release has claimed the close, h must stay reachable: its
	// cleanup would otherwise report a Handle being closed as collected.
	runtime.KeepAlive(h)
}

// ID returns the id of the resource h tracks, the Resource.ID of its
// reports; after Reopen, the new resource's.
func (h *Handle) ID() uint64 {
	if h == nil {
		return 0
	}
	return h.rec.id
}
