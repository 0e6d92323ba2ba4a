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
	return r.hooks.closeError(&LeakError{Leaks: leaks})
}

// endAllOpen closes the rows and rolls back the transactions still open,
// and logs what it closed in one WARN record with their locations. All are
// ended at once, each on a goroutine of its own, and endAllOpen waits for
// them: one slow driver call (lib/pq reading the rest of a large result)
// does not hold up the others, and none waits on another. (Ended in turn,
// rows whose reader waits for a row lock would wait for the rollback of
// the transaction that holds it. database/sql's rollback needs no order: it
// cancels the transaction's own rows first.) Work of other goroutines that
// still uses them gets database/sql's errors for closed rows and ended
// transactions (sql.ErrTxDone), never a panic.
func (r *leakRegistry) endAllOpen() {
	// Each node is taken out of the registry under the lock that found it:
	// from then on it is this function's (its owner's release finds it no
	// longer open and leaves it alone; see release). Found in one step and
	// removed in another, a node could be closed by its owner in between,
	// recycled, and tracked again for a new resource, possibly in another
	// shard: removing it then unlinked it from a list it was not in.
	var open []*leakNode
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for n := s.head; n != nil; {
			next := n.next
			r.unlinkLocked(s, n, false)
			open = append(open, n)
			n = next
		}
		s.mu.Unlock()
	}
	var closed []string
	var wg sync.WaitGroup
	now := r.now()
	for _, n := range open {
		closed = append(closed, r.describe(n.infoLocked(), now).String())
		wg.Go(func() { r.end(n, errTxClosedByClose, false) })
	}
	wg.Wait()
	if len(closed) > 0 {
		r.hooks.log.Warn("dbm: Close closed rows and transactions left open (rows closed, transactions rolled back)",
			slog.Int("count", len(closed)), slog.String("closed", strings.Join(closed, "; ")))
	}
}

// errTxClosedByClose is what a [Tracer] is told about a transaction that
// [Manager.Close] rolled back.
var errTxClosedByClose = fmt.Errorf("%w: transaction still open at Close; rolled back", ErrLeaked)
