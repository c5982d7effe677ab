// Package nethttp tracks the response bodies of net/http clients, and the
// connections they are read from, with a connleak tracker: a body left open
// on an error path is reported with the line that called Do, Get or Post,
// and its connection, stuck in CLOSE_WAIT under net/http's read loop, is
// reported under that same line instead of net/http's own dial.
//
//	tr := tracker.New()
//	client := nethttp.WrapClient(http.DefaultClient, nethttp.WithTracker(tr))
//	resp, err := client.Get(url) // a body never closed is reported at this line
//
// A body is tracked from the RoundTrip that returned it to its Close. Read
// to the end without Close, it is not a leak: net/http has already put its
// connection back in the pool. Dropped without Close, it is reported as
// garbage-collected; held longer than a limit set with
// tracker.WithHoldLimit(nethttp.KindBody, d), as held too long.
//
// DebugHandler serves a tracker's state as a page in the manner of
// net/http/pprof (text, JSON and HTML): health, leaks and open resources
// grouped by open site, and the process's sockets no wrapper saw. Nothing
// mounts it by itself; serve it on a loopback listener or behind
// authentication.
package nethttp
