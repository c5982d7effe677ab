package nethttp

import "github.com/connleak/connleak/tracker"

// An Option configures NewTransport, WrapClient, Listen, WrapServer and
// Middleware.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracker *tracker.Tracker
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.tracker == nil {
		c.tracker = tracker.Default()
	}
	return c
}

// WithTracker tracks through tr instead of tracker.Default(). A nil tr
// means tracker.Default().
func WithTracker(tr *tracker.Tracker) Option {
	return optionFunc(func(c *config) { c.tracker = tr })
}
