package dbm

import (
	"database/sql"
	"sync/atomic"
)

// counters are the manager's running totals, updated with atomics so that
// parallel statements never wait on each other.
type counters struct {
	statements   atomic.Uint64
	slow         atomic.Uint64
	transactions atomic.Uint64
	commits      atomic.Uint64
	rollbacks    atomic.Uint64
	retries      atomic.Uint64
	// see lifecycle.go and commitcheck.go
	idleChecksFailed atomic.Uint64
	commitsResolved  [numCommitOutcomes]atomic.Uint64
	errors           [numClasses]atomic.Uint64
}

// Stats is a snapshot of the pool and of what the manager has done since it
// was created. Counters only grow. Package dbm/dbmprom exports it to
// Prometheus; docs/observability.md lists every field with its metric.
type Stats struct {
	// DBStats is the pool's own view, from [sql.DB.Stats]: MaxOpenConnections,
	// OpenConnections, InUse and Idle (gauges), and WaitCount and
	// WaitDuration (statements that waited for a free connection, and how
	// long in total: in the manager's queue, or in the pool), MaxIdleClosed, MaxIdleTimeClosed and MaxLifetimeClosed
	// (connections closed by the pool limits of [Config]).
	sql.DBStats

	// Statements is the number of statements run (queries and execs),
	// successful or not.
	Statements uint64
	// SlowStatements is how many statements took at least
	// Config.SlowQueryThreshold (zero when the threshold is off).
	SlowStatements uint64
	// Transactions is the number of transactions begun.
	Transactions uint64
	// Commits is the number of transactions committed.
	Commits uint64
	// Rollbacks is the number of transactions rolled back: by the caller,
	// by [Manager.WithTx], by the leak detector's reclaim of a dropped
	// [Tx], or by [Manager.Close] for one left open.
	Rollbacks uint64
	// Retries is the number of times a statement or a [Manager.WithTx]
	// function was run again after a retryable error (see
	// docs/errors-and-retries.md). Each failed attempt also counts in Errors.
	Retries uint64
	// Errors is the number of failed operations: statements, scans, commits,
	// and calls on a closed manager. Invalid arguments caught before
	// anything ran (an [*ArgumentError]) are the caller's bug and are not
	// counted; those the driver reports (a wrong argument count) are, as
	// [ClassInvalidArgument].
	Errors uint64
	// LeaksDetected is how many Rows and Tx stayed open longer than
	// Config.LeakThreshold and were logged as probable leaks (each once).
	LeaksDetected uint64
	// LeaksReclaimed is how many Rows and Tx the garbage collector found
	// dropped without being closed, which the manager then closed (rows) or
	// rolled back (transactions) to give their connections back.
	LeaksReclaimed uint64
	// LeakCollections is how many garbage collections the manager forced
	// because a caller waited for a connection while Rows or Tx were open,
	// so that those the program dropped are reclaimed and their
	// connections reach the waiter (see docs/leaks.md). Rate-limited.
	LeakCollections uint64
	// IdleChecksFailed is how many connections failed the ping given to
	// one idle for Config.ValidateIdleAfter before it was handed out (each
	// was closed and another taken).
	IdleChecksFailed uint64
	// LostCommitsCommitted, LostCommitsRolledBack and LostCommitsUnknown
	// count the COMMITs whose reply was lost, by what the server said when
	// asked (PostgreSQL; see docs/errors-and-retries.md#lost-commit-replies):
	// committed (Commit returned nil), rolled back (an error of
	// [ClassConnection]: nothing committed) or nothing, because it could not
	// be reached in time ([ErrCommitUnknown]). A lost reply the manager did
	// not ask about (the check off, or a transaction that only read) is not
	// counted here.
	LostCommitsCommitted, LostCommitsRolledBack, LostCommitsUnknown uint64
	// ErrorsByClass counts failed operations by [Class] name; classes with no
	// errors are absent.
	ErrorsByClass map[string]uint64

	// QueueLength is the number of callers waiting now for their turn at a
	// connection in the manager's fair queue (see docs/reliability.md).
	// Their waits also count in WaitCount and WaitDuration.
	QueueLength int
	// AcquireWait is the distribution of the time callers took to get
	// their turn at a connection: the time to connection.
	AcquireWait AcquireHistogram
	// ProbeState is [ProbeUp], or [ProbeDown] while calls fail fast because
	// the database cannot be reached and one probe at a time checks it; ""
	// for a pool from [Wrap], which has no prober.
	ProbeState string
	// Probes is the number of connection attempts the prober made.
	Probes uint64
	// FastFailures is the number of calls that failed fast with
	// [ErrConnection] while the database was down, without dialing.
	FastFailures uint64
	// ConnectAttempts is the number of connections the manager tried to
	// open, probes included (zero for a pool from [Wrap]).
	ConnectAttempts uint64
	// Nodes describes each server of a manager with Config.ReplicaHosts,
	// the configured primary first; nil for one server. The fields above
	// then add up all the servers' pools and counters.
	Nodes []NodeStats
}

// Stats returns a snapshot of the pool and the manager's counters. It is
// cheap and safe to call concurrently, also after Close. A nil manager has
// zero Stats.
func (m *Manager) Stats() Stats {
	if m == nil {
		return Stats{}
	}
	if m.cluster != nil {
		return m.cluster.stats()
	}
	s := Stats{
		DBStats:        m.poolStats(),
		Statements:     m.stats.statements.Load(),
		SlowStatements: m.stats.slow.Load(),
		Transactions:   m.stats.transactions.Load(),
		Commits:        m.stats.commits.Load(),
		Rollbacks:      m.stats.rollbacks.Load(),
		Retries:        m.stats.retries.Load(),

		IdleChecksFailed:      m.stats.idleChecksFailed.Load(),
		LostCommitsCommitted:  m.stats.commitsResolved[lostCommitCommitted].Load(),
		LostCommitsRolledBack: m.stats.commitsResolved[lostCommitRolledBack].Load(),
		LostCommitsUnknown:    m.stats.commitsResolved[lostCommitUnknown].Load(),
		ErrorsByClass:         map[string]uint64{},
	}
	m.leaks.leakStats(&s)
	s.QueueLength = m.queue.waitingNow()
	s.AcquireWait = m.queue.snapshot()
	s.ProbeState = m.probe.state()
	if p := m.probe; p != nil {
		s.Probes, s.FastFailures = p.probes.Load(), p.fastFails.Load()
	}
	if m.dials != nil {
		s.ConnectAttempts = m.dials.attempts.Load()
	}
	for c := range numClasses {
		if n := m.stats.errors[c].Load(); n > 0 {
			s.ErrorsByClass[c.String()] = n
			s.Errors += n
		}
	}
	return s
}
