package dbm

import "time"

// CheckLeaksAt runs the leak threshold check as if the time were now, so
// tests need not wait for the background check.
func (m *Manager) CheckLeaksAt(now time.Time) { m.leaks.check(now) }
