// Package procwide holds the facts about the process-wide tracker that
// tracker publishes and testutil reads: testutil must learn whether
// tracker.Default() has been made without making it, which would start a
// poller that runs for the rest of the process.
package procwide

import "sync/atomic"

// DefaultMade is set once tracker.Default() has made the process-wide
// tracker.
var DefaultMade atomic.Bool
