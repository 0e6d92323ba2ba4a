package dbm

import (
	"time"
)

// NodeStats describes one server of a manager with Config.ReplicaHosts
// ([Stats].Nodes).
type NodeStats struct {
	// Addr is the server's "host:port".
	Addr string
	// Role is "primary" or "replica" as the server last said
	// (pg_is_in_recovery()), or "unknown" before it first answered.
	Role string
	// Writer reports whether writes go to this server now.
	Writer bool
	// Healthy reports whether the server is in use: its last checks
	// answered. It is taken out after two failed checks in a row and put
	// back after one that answers.
	Healthy bool
	// Lag is how far a replica is behind the writer, at most (see
	// docs/replicas.md#lag); -1 when unknown (it never caught up with a
	// position the manager saw). Zero for the writer.
	Lag time.Duration
	// LagBytes is how many bytes of WAL the replica had not replayed at its
	// last check, against the writer's position at its own last check.
	LagBytes uint64
	// Position is the server's WAL position at its last check, as
	// PostgreSQL writes it: the insert position of a primary, the replay
	// position of a replica.
	Position string
	// Reads and Writes count the statements (and, in Writes, the
	// transactions and pinned connections) routed to the server.
	Reads, Writes uint64
	// FailedChecks counts the checks the server did not answer.
	FailedChecks uint64
	// LastError is the error of the last failed check (no password), or "".
	LastError string
	// Pool is the server's own pool and counters: in use, idle, statements,
	// errors.
	Pool Stats
}

// stats is [Manager.Stats] for a manager with replicas: the nodes' pools
// and counters added up, the router's own counters (WithTx reruns, calls
// on a closed manager), and a NodeStats per node.
func (c *cluster) stats() Stats {
	m := c.m
	s := Stats{
		Retries:       m.stats.retries.Load(),
		ErrorsByClass: map[string]uint64{},
	}
	for cl := range numClasses {
		if n := m.stats.errors[cl].Load(); n > 0 {
			s.ErrorsByClass[cl.String()] += n
			s.Errors += n
		}
	}
	w := c.writer.Load()
	wpos := w.lsn.Load()
	now := c.now().UnixNano()
	for _, n := range c.nodes {
		p := n.mgr.Stats()
		addStats(&s, &p)
		ns := NodeStats{
			Addr: n.addr, Role: "unknown", Writer: n == w, Healthy: n.healthy.Load(), Lag: -1,
			Position: formatLSN(n.lsn.Load()), Reads: n.reads.Load(), Writes: n.writes.Load(),
			FailedChecks: n.fails.Load(), Pool: p,
		}
		if e := n.lastErr.Load(); e != nil && !ns.Healthy {
			ns.LastError = *e
		}
		switch {
		case n.lsn.Load() == 0 && !ns.Healthy:
		case n.primary.Load():
			ns.Role = "primary"
			if n == w {
				ns.Lag = 0
			}
		default:
			ns.Role = "replica"
			if f := n.fresh.Load(); f > 0 {
				ns.Lag = time.Duration(max(now-f, 0))
			}
			if pos := n.lsn.Load(); wpos > pos {
				ns.LagBytes = wpos - pos
			}
		}
		s.Nodes = append(s.Nodes, ns)
		if n == w {
			s.ProbeState = p.ProbeState // writes fail fast when the writer is down
		}
	}
	return s
}

// addStats adds p's pool and counters to s.
func addStats(s, p *Stats) {
	s.MaxOpenConnections += p.MaxOpenConnections
	s.OpenConnections += p.OpenConnections
	s.InUse += p.InUse
	s.Idle += p.Idle
	s.WaitCount += p.WaitCount
	s.WaitDuration += p.WaitDuration
	s.MaxIdleClosed += p.MaxIdleClosed
	s.MaxIdleTimeClosed += p.MaxIdleTimeClosed
	s.MaxLifetimeClosed += p.MaxLifetimeClosed
	s.Statements += p.Statements
	s.SlowStatements += p.SlowStatements
	s.Transactions += p.Transactions
	s.Commits += p.Commits
	s.Rollbacks += p.Rollbacks
	s.Retries += p.Retries
	s.Errors += p.Errors
	s.LeaksDetected += p.LeaksDetected
	s.LeaksReclaimed += p.LeaksReclaimed
	s.LeakCollections += p.LeakCollections
	s.IdleChecksFailed += p.IdleChecksFailed
	s.LostCommitsCommitted += p.LostCommitsCommitted
	s.LostCommitsRolledBack += p.LostCommitsRolledBack
	s.LostCommitsUnknown += p.LostCommitsUnknown
	s.QueueLength += p.QueueLength
	s.Probes += p.Probes
	s.FastFailures += p.FastFailures
	s.ConnectAttempts += p.ConnectAttempts
	addHistogram(&s.AcquireWait, &p.AcquireWait)
	for k, v := range p.ErrorsByClass {
		s.ErrorsByClass[k] += v
	}
}

// addHistogram adds p's waits to s; the buckets are the same for every
// manager (acquireBounds).
func addHistogram(s, p *AcquireHistogram) {
	if len(p.Counts) == 0 {
		return
	}
	if len(s.Counts) == 0 {
		s.Bounds, s.Counts = p.Bounds, make([]uint64, len(p.Counts))
	}
	for i, n := range p.Counts {
		s.Counts[i] += n
	}
	s.Count += p.Count
	s.Sum += p.Sum
}
