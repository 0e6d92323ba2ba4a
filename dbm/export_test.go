package dbm

import (
	"context"
	"net"
	"time"
)

// WithClock replaces the manager's clock, so tests of durations and of
// once-per-interval logging never sleep.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// PoolWarnInterval is the least time between two pool saturation warnings.
const PoolWarnInterval = poolWarnInterval

// SetClockForTest replaces the manager's retry clock: now reports the time
// and sleep records a pause instead of taking it. Tests use it so that no
// test sleeps or depends on the wall clock.
func SetClockForTest(m *Manager, now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) {
	m.retryPol.clock = clock{now: now, sleep: sleep}
}

// SetRetryForTest sets the retry policy of a manager made with Wrap (New
// takes it from Config). The fair queue is then as Wrap would have made it
// with that acquire timeout (see wrapQueue): call it while the manager
// holds no connection.
func SetRetryForTest(m *Manager, attempts int, initial, max, acquire time.Duration) {
	m.retryPol.attempts, m.retryPol.initial, m.retryPol.max, m.retryPol.acquire = attempts, initial, max, acquire
	if q := wrapQueue(m.db.DB, acquire); m.dials == nil && (q == nil) != (m.queue == nil) {
		m.queue = q
	}
}

// SetJitterForTest replaces the random draw of retry pauses: draw(n) must
// return a duration in [0, n).
func SetJitterForTest(m *Manager, draw func(n time.Duration) time.Duration) {
	m.retryPol.draw = draw
}

// SetPQDialForTest replaces how lib/pq's sockets are dialled, until the
// returned function restores the default.
func SetPQDialForTest(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (restore func()) {
	pqDial.Store(&dial)
	return func() { pqDial.Store(nil) }
}

// QueuedForTest is the number of callers in the list of waiters of m's
// fair queue (they have their place in it); 0 without a queue.
func QueuedForTest(m *Manager) int {
	if m.queue == nil {
		return 0
	}
	return m.queue.sem.Waiting()
}

// AcquireTimeoutOf is the bound on the wait for a pool connection that m
// applies (0: only the caller's context).
func AcquireTimeoutOf(m *Manager) time.Duration { return m.retryPol.acquire }

// SetReplaceWindowForTest sets how long work whose connections keep
// breaking goes on running on new ones (New takes it from
// Config.ConnectTimeout).
func SetReplaceWindowForTest(m *Manager, d time.Duration) {
	m.retryPol.replaceFor = d
}

// SQLiteChunkParams is the placeholders per INSERT that Tx.CopyFrom aims
// for on SQLite.
const SQLiteChunkParams = sqliteChunkParams

// RetryPolicyOf is m's retry policy: tries in all, the first pause's cap
// and the cap of any pause.
func RetryPolicyOf(m *Manager) (attempts int, initial, maxWait time.Duration) {
	return m.retryPol.attempts, m.retryPol.initial, m.retryPol.max
}

// SetWarmEveryForTest shortens how often the MinIdleConns warmer looks at
// the pool, for the managers made afterwards; the returned function
// restores it.
func SetWarmEveryForTest(d time.Duration) (restore func()) {
	old := warmEvery
	warmEvery = d
	return func() { warmEvery = old }
}
