package tracker

import (
	"runtime/pprof"
	"sync"
)

// ProfileName is the name of the runtime/pprof profile of open tracked
// resources, by open-site stack, filled by trackers made with WithProfile.
// With net/http/pprof mounted, go tool pprof reads it from
// /debug/pprof/github.com/connleak/connleak/tracker.open; pprof.Lookup
// returns it in the program.
const ProfileName = "github.com/connleak/connleak/tracker.open"

// openProfile is made on first use: a profile name can be registered once
// per process, and every tracker with WithProfile shares it.
var openProfile = sync.OnceValue(func() *pprof.Profile {
	if p := pprof.Lookup(ProfileName); p != nil {
		return p
	}
	return pprof.NewProfile(ProfileName)
})

// WithProfile records every resource this tracker opens in the pprof
// profile named ProfileName, until it is closed or collected, so that
// go tool pprof shows open connections, listeners and handles by the stack
// that opened them, next to the heap and goroutine profiles. It costs a
// second stack capture at open (runtime/pprof takes its own) and about
// 300 bytes per open resource, which is why it is off by default.
func WithProfile() Option {
	return optionFunc(func(c *config) error {
		c.profile = true
		openProfile() // registered now, so that it can be looked up before anything opens
		return nil
	})
}

// profileAdd enters r in the profile with the stack skip frames above
// profileAdd's caller, the same stack newRecord interns.
func (t *Tracker) profileAdd(r *record, skip int) {
	if t.cfg.profile {
		// Add counts from its own frame: +1 for profileAdd, +1 for its caller.
		openProfile().Add(r, skip+2)
	}
}

func (t *Tracker) profileRemove(r *record) {
	if t.cfg.profile {
		openProfile().Remove(r)
	}
}
