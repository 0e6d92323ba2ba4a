package dbm

import "time"

// CheckLeaksAt runs the leak threshold check as if the time were now, so
// tests need not wait for the background check.
func (m *Manager) CheckLeaksAt(now time.Time) { m.leaks.check(now) }

// SweepLeaksAt runs one leak sweep as if the time were now: every tracked
// resource opened at least the sweep age before now gets its reclaiming
// cleanup, and the registry drops its reference to the wrapper. Tests call
// it instead of waiting for the background sweeper.
func (m *Manager) SweepLeaksAt(now time.Time) { m.leaks.sweep(now) }

// LeakCleanupsAttached is how many cleanups the sweeps have attached.
func (m *Manager) LeakCleanupsAttached() uint64 { return m.leaks.attached.Load() }

// WithoutLeakSweeper turns the background sweeper off, so that only
// SweepLeaksAt attaches cleanups.
func WithoutLeakSweeper() Option {
	return optionFunc(func(o *options) { o.leak.noSweeper = true })
}
