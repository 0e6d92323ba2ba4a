package dbm

import (
	"database/sql"
	"sync"
)

// afterCommit holds the functions [Tx.AfterCommit] registered.
type afterCommit struct {
	mu    sync.Mutex // protects the following fields
	fns   []func()
	ended bool // Commit or Rollback took the list: no more registrations
}

// add registers fn unless the transaction has ended, and reports whether it
// did.
func (a *afterCommit) add(fn func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended {
		return false
	}
	a.fns = append(a.fns, fn)
	return true
}

// end closes the list to registrations and returns what it held.
func (a *afterCommit) end() []func() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ended = true
	fns := a.fns
	a.fns = nil
	return fns
}

// runHooks calls fns in order. A panic in one ends the run and reaches the
// caller of Commit (or WithTx); the functions after it do not run.
func runHooks(fns []func()) {
	for _, fn := range fns {
		fn()
	}
}

// AfterCommit registers fn to run once the transaction has committed: the
// place for side effects outside the database (sending mail, publishing an
// event, updating a cache) that must happen once, and only if the
// transaction's writes are in the database.
//
// The functions run in the order they were registered, synchronously,
// inside [Tx.Commit] after COMMIT succeeded and the transaction was ended
// (its connection is back in the pool, so fn may use the manager), before
// Commit returns. They never run when the transaction rolls back, and are
// dropped with it. Inside [Manager.WithTx] each run of fn has a new Tx: the
// functions registered by a run that is rolled back and rerun (after a
// serialization failure or a deadlock) are dropped with that run, so each
// function registered by the run that commits runs exactly once.
//
// When COMMIT fails, the functions do not run, also when the error matches
// [ErrCommitUnknown]: the transaction may have committed, but nothing says
// it did. A caller that must not lose the side effect then has to find out
// from the database (for example by reading back a row the transaction
// wrote) and act itself.
//
// If fn panics, the panic reaches the caller of Commit (or WithTx) and the
// functions registered after it do not run; the transaction stays
// committed and fully ended (a deferred Rollback does nothing, nothing is
// reported as leaked).
//
// AfterCommit returns an error matching [ErrInvalidArgument] for a nil fn,
// and one matching [ErrClosed] (and [sql.ErrTxDone]) once Commit or
// Rollback has been called: fn would never run.
func (tx *Tx) AfterCommit(fn func()) error {
	if err := tx.usable("AfterCommit"); err != nil {
		return err
	}
	if fn == nil {
		return &ArgumentError{Func: "AfterCommit", Arg: "fn", Reason: "nil function"}
	}
	if !tx.hooks.add(fn) {
		return tx.s.m.newError(ClassClosed, "", "after commit", "", sql.ErrTxDone)
	}
	return nil
}
