package dbm

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// closeLeaks stops the threshold check and the sweeper, lists what is still
// open, then closes every open Rows and rolls back every open Tx (see
// endAllOpen), and returns the error [Manager.Close] reports for them, or
// nil. [Manager.Close] calls it once, before it closes the pool, so that
// the connections those resources held come back to the pool and are closed
// with it: no server session is left, none idle in a transaction holding
// its locks.
func (r *leakRegistry) closeLeaks() error {
	if r == nil {
		return nil
	}
	r.stopOnce.Do(func() {
		if r.stop != nil {
			close(r.stop)
			<-r.stopped
		}
		r.stopSweeper()
	})
	leaks := r.snapshot()
	if len(leaks) == 0 {
		return nil
	}
	r.endAllOpen()
	return r.m.newError(ClassLeaked, "", "close", "", &LeakError{Leaks: leaks})
}

// endAllOpen closes the rows and rolls back the transactions still open,
// and logs what it closed in one WARN record with their locations. Rows go
// first: a rollback waits for the rows of its transaction. Each kind is
// ended in parallel, so that one slow driver call (lib/pq reading the rest
// of a large result) does not hold up the others. Work of other goroutines
// that still uses them gets database/sql's errors for closed rows and ended
// transactions (sql.ErrTxDone), never a panic.
func (r *leakRegistry) endAllOpen() {
	var rows, txs []*leakNode
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for n := s.head; n != nil; n = n.next {
			if n.kind == kindTx {
				txs = append(txs, n)
			} else {
				rows = append(rows, n)
			}
		}
		s.mu.Unlock()
	}
	var closed []string
	now := r.now()
	for _, nodes := range [][]*leakNode{rows, txs} {
		var wg sync.WaitGroup
		for _, n := range nodes {
			// remove takes n from the registry unless its owner closed
			// it meanwhile; from then on n is this function's (see end).
			if open, _, _, _ := r.remove(n, false); !open {
				continue
			}
			closed = append(closed, r.describe(n.infoLocked(), now).String())
			wg.Go(func() { r.end(n, errTxClosedByClose) })
		}
		wg.Wait()
	}
	if len(closed) > 0 {
		r.m.log.Warn("dbm: Close closed rows and transactions left open (rows closed, transactions rolled back)",
			slog.Int("count", len(closed)), slog.String("closed", strings.Join(closed, "; ")))
	}
}

// errTxClosedByClose is what a [Tracer] is told about a transaction that
// [Manager.Close] rolled back.
var errTxClosedByClose = fmt.Errorf("%w: transaction still open at Close; rolled back", ErrLeaked)
