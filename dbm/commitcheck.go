package dbm

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// A lost COMMIT reply on PostgreSQL: when the connection breaks after
// COMMIT was sent and before its answer arrived, the transaction may or may
// not have committed. The manager asks the server. Before COMMIT, a
// transaction that wrote takes its transaction id (and nothing else) in the
// same round trip:
//
//	SELECT txid_current_if_assigned(), pg_backend_pid()
//
// (NULL when the transaction never got one: it wrote nothing, and its
// COMMIT cannot have changed anything). When the reply to COMMIT is lost,
// the manager runs `SELECT txid_status($1)` on another connection of the
// pool until the server says "committed" or "aborted" (while it still says
// "in progress" it has not yet noticed the connection's end; after half a
// second the manager ends the session that still runs the transaction,
// its own, see xactStatus), bounded by
// the transaction's context, or, when that context has ended (the caller's
// deadline cut COMMIT short), by one second ([lostCommitGrace]) at most. Only when it cannot ask (the server stays unreachable, or the
// id is too old for the server to remember) is the outcome unknown.
//
// The cost is one round trip per transaction that ran a statement the
// manager counts as a write (an Exec, a CopyFrom, a statement other than a
// plain read, or one marked [NotIdempotent]); read-only transactions pay
// nothing, and a lost COMMIT reply there stays [ErrCommitUnknown].
// txid_current_if_assigned and txid_status exist since PostgreSQL 10 (on
// 13 and later they are the older names of pg_current_xact_id_if_assigned
// and pg_xact_status); [New] checks once that the server has them and
// turns the check off otherwise (CockroachDB, older servers).

// commitOutcome is what the server said about a transaction whose COMMIT
// reply was lost.
type commitOutcome int

const (
	lostCommitCommitted commitOutcome = iota
	lostCommitRolledBack
	lostCommitUnknown
	numCommitOutcomes
)

// commitChecker decides whether, and within what time, a lost COMMIT
// reply is resolved.
type commitChecker struct {
	on      bool
	timeout time.Duration // the bound when the transaction's context has ended
}

// newCommitChecker: on by default for pools made by New on PostgreSQL
// (lib/pq or pgx); set tells otherwise ([WithCommitCheck]).
func newCommitChecker(driver string, set *bool, fromNew bool, timeout time.Duration) commitChecker {
	pg := driver == DriverPostgres || driver == DriverPgx
	on := pg && fromNew
	if set != nil {
		on = pg && *set
	}
	return commitChecker{on: on, timeout: timeout}
}

// WithCommitCheck turns the resolution of a lost COMMIT reply on or off
// (see docs/errors-and-retries.md#lost-commit-replies). It is on by default
// for a manager made by [New] on PostgreSQL (drivers postgres and pgx), and
// off for one made by [Wrap], whose pool may be a mock that does not expect
// the extra statement; WithCommitCheck(true) turns it on there. Other
// drivers cannot ask their server and ignore it.
func WithCommitCheck(on bool) Option {
	return optionFunc(func(o *options) { o.commitCheck = &on })
}

// probeCommitCheck turns the check off when the server lacks the functions
// it needs. It runs once, in New.
func (m *Manager) probeCommitCheck(ctx context.Context) {
	if !m.commits.on {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.commits.timeout)
	defer cancel()
	var xid sql.NullInt64
	if err := m.db.QueryRowContext(ctx, "SELECT txid_current_if_assigned()").Scan(&xid); err != nil {
		m.commits.on = false
		m.log.Info("dbm: lost COMMIT replies cannot be resolved on this server", slog.String("addr", m.addr), slog.String("error", m.secrets.Scrub(err).Error()))
	}
}

// commitCheckOn reports whether a lost COMMIT reply is resolved.
func (m *Manager) commitCheckOn() bool { return m.commits.on }

// lostCommit counts a lost COMMIT reply by what the server said.
func (m *Manager) lostCommit(o commitOutcome) { m.stats.commitsResolved[o].Add(1) }

// noteStatement records that the transaction ran a write, so that Commit
// takes its transaction id first.
func (tx *Tx) noteStatement(ctx context.Context, fn string, read bool) {
	if tx.wrote.Load() || !tx.s.m.commitCheckOn() {
		return
	}
	idem, marked := idempotence(ctx)
	if fn == "Exec" || !read || marked && !idem {
		tx.wrote.Store(true)
	}
}

// takeXID takes the transaction's id (tx.xid; 0 when it has none) just
// before COMMIT, when the transaction wrote and the check is on. An error
// means the transaction cannot commit (its connection broke, or the server
// aborted it): COMMIT must not be sent.
func (tx *Tx) takeXID() error {
	if !tx.wrote.Load() || !tx.s.m.commitCheckOn() {
		return nil
	}
	var xid sql.NullInt64
	if err := tx.tx.QueryRowContext(tx.ctx, "SELECT txid_current_if_assigned(), pg_backend_pid()").Scan(&xid, &tx.backend); err != nil {
		return err
	}
	tx.xid, tx.xidTaken = xid.Int64, true
	return nil
}

// resolveCommit asks the server what became of transaction xid, whose
// COMMIT failed with lost (no answer from the server), and returns Commit's
// result: nil when it committed, an error of [ClassConnection] (not
// [ErrOutcomeUnknown]: nothing was committed, and WithTx reruns it) when
// it was rolled back, and an error matching [ErrCommitUnknown] when the
// server could not say.
func (tx *Tx) resolveCommit(lost error, code string) error {
	m := tx.s.m
	if tx.xidTaken && tx.xid == 0 {
		// No transaction id: it wrote nothing, so there was nothing to
		// commit or lose.
		m.lostCommit(lostCommitCommitted)
		return nil
	}
	ctx := tx.ctx
	if ctx.Err() != nil {
		// The caller's deadline has passed: a short look only.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), min(m.commits.timeout, lostCommitGrace))
		defer cancel()
	}
	status, err := m.xactStatus(ctx, tx.xid, tx.backend)
	switch status {
	case "committed":
		m.lostCommit(lostCommitCommitted)
		m.log.Info("dbm: the reply to COMMIT was lost; the server says the transaction committed", slog.Int64("xid", tx.xid))
		return nil
	case "aborted":
		m.lostCommit(lostCommitRolledBack)
		return m.newError(ClassConnection, code, "commit", "", &commitRolledBack{err: lost, xid: tx.xid})
	}
	m.lostCommit(lostCommitUnknown)
	return m.newError(ClassCommitUnknown, code, "commit", "", withCtxEnded(tx.ctx, &commitUnresolved{err: lost, why: err}))
}

// xactStatus polls txid_status until the server gives a final answer or
// ctx ends; the error says why there is none. A transaction still in
// progress after [lostCommitTerminateAfter] is one whose session the server
// has not seen end (the client's side of the connection died, the
// server's did not): its session, backend, is still running the
// transaction and waits for a COMMIT that will not come. The manager ends
// that session (pg_terminate_backend, only while it still runs this
// transaction), which settles the outcome either way, and asks again.
func (m *Manager) xactStatus(ctx context.Context, xid int64, backend int64) (string, error) {
	pause := 5 * time.Millisecond
	start, terminated := time.Now(), false
	for {
		var st sql.NullString
		err := m.db.QueryRowContext(ctx, "SELECT txid_status($1)", xid).Scan(&st)
		switch {
		case err == nil && !st.Valid:
			return "", errXidForgotten
		case err == nil && st.String != "in progress":
			return st.String, nil
		case err == nil:
			err = errStillInProgress
			if !terminated && backend != 0 && time.Since(start) >= lostCommitTerminateAfter {
				// backend_xid is the 32-bit xid: the txid less its epoch.
				_, terr := m.db.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_xid::text = $2",
					backend, strconv.FormatInt(xid&0xFFFFFFFF, 10))
				terminated = terr == nil
				continue
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", err
		case <-t.C:
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// lostCommitTerminateAfter is how long a transaction whose COMMIT reply
// was lost may stay in progress before the manager ends its session.
const lostCommitTerminateAfter = 500 * time.Millisecond

// lostCommitGrace bounds the check when the transaction's context ended
// before COMMIT's reply was lost (the caller's deadline cut it short).
const lostCommitGrace = time.Second

var (
	errXidForgotten    = errors.New("the server no longer knows the transaction (its id is too old)")
	errStillInProgress = errors.New("the server still reports the transaction in progress")
)

// commitRolledBack is the error of a COMMIT whose reply was lost while the
// server rolled the transaction back.
type commitRolledBack struct {
	err error
	xid int64
}

func (e *commitRolledBack) Error() string {
	return "connection lost at COMMIT; the server reports transaction " + strconv.FormatInt(e.xid, 10) + " rolled back (nothing committed): " + e.err.Error()
}
func (e *commitRolledBack) Unwrap() error { return e.err }

// commitUnresolved is the error of a COMMIT whose reply was lost and whose
// outcome the server could not be asked for.
type commitUnresolved struct {
	err error // COMMIT's
	why error // why the server could not say; nil when the check is off
}

func (e *commitUnresolved) Error() string {
	if e.why == nil {
		return e.err.Error()
	}
	return e.err.Error() + " (outcome not resolved: " + e.why.Error() + ")"
}
func (e *commitUnresolved) Unwrap() error { return e.err }
