package dbm

import "time"

// WithClock replaces the manager's clock, so tests of durations and of
// once-per-interval logging never sleep.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// PoolWarnInterval is the least time between two pool saturation warnings.
const PoolWarnInterval = poolWarnInterval
