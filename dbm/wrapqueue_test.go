package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// waitedTracer counts the turns a tracer is told of, by TraceResult.Waited.
type waitedTracer struct {
	turns, waited atomic.Int64
}

func (*waitedTracer) Start(ctx context.Context, _ dbm.TraceOp) context.Context { return ctx }
func (*waitedTracer) End(context.Context, dbm.TraceOp, dbm.TraceResult)        {}
func (w *waitedTracer) TraceAcquire(_ context.Context, _ dbm.TraceOp, res dbm.TraceResult) {
	w.turns.Add(1)
	if res.Waited {
		w.waited.Add(1)
	}
}

// connCall is Conn, closed at once.
var connCall = waitingCall{"Conn", func(ctx context.Context, m *dbm.Manager) error {
	c, err := m.Conn(ctx)
	if err == nil {
		err = c.Close()
	}
	return err
}}

// wrapUnbounded wraps a pool of the in-memory driver (one row per query)
// left as sql.Open makes it: no MaxOpenConnections bound.
func wrapUnbounded(t testing.TB, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	return wrapMem(t, 0, opts...)
}

// wrapMem wraps a pool of the in-memory driver (one row per query) of
// maxOpen connections (0: unbounded, as sql.Open makes it).
func wrapMem(t testing.TB, maxOpen int, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	db, err := sql.Open(memdriver.Name, "1")
	if err != nil {
		t.Fatal(err)
	}
	if mo := db.Stats().MaxOpenConnections; mo != 0 {
		t.Fatalf("sql.Open's MaxOpenConnections = %d, want 0 (unbounded)", mo)
	}
	db.SetMaxOpenConns(maxOpen)
	m, err := dbm.Wrap(db, "mem", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestWrapUnboundedReadsTakeAPermit: a Wrap over an unbounded pool with an
// acquire timeout (the default, or one set) has a fair queue, unlimited:
// reads, Query, BeginTx, Ping and Conn each take a permit that is free at
// once (AcquireWait counts them with a time of 0, a tracer is told that
// none waited), and a read allocates no more than on a bounded pool: it
// takes the pool path, not a connection of its own under a
// context.WithTimeout. Before, such a pool had no queue (AcquireWait
// stayed empty) and every call took a dedicated connection, which the
// tracer saw as a wait in database/sql (Waited true). With
// NoAcquireTimeout it still has no queue: nothing to bound.
func TestWrapUnboundedReadsTakeAPermit(t *testing.T) {
	ctx := context.Background()
	calls := []waitingCall{
		{"ExecuteQuery", func(ctx context.Context, m *dbm.Manager) error {
			var out []benchRow
			return m.ExecuteQuery(ctx, &out, benchQuery)
		}},
		{"Query", func(ctx context.Context, m *dbm.Manager) error {
			rows, err := m.Query(ctx, benchQuery)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Close()
		}},
		waitingCalls[2], waitingCalls[3], // BeginTx, Ping
		connCall,
	}
	for _, tc := range []struct {
		name string
		opts []dbm.Option
	}{{"default AcquireTimeout", nil}, {"AcquireTimeout 5s", []dbm.Option{dbm.WithAcquireTimeout(5 * time.Second)}}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &waitedTracer{}
			m := wrapUnbounded(t, append(tc.opts, dbm.WithTracer(tr))...)
			for i, call := range calls {
				if err := call.run(ctx, m); err != nil {
					t.Fatalf("%s: %v", call.name, err)
				}
				h := m.Stats().AcquireWait
				var atOnce uint64 // the first bucket: free at once
				if len(h.Counts) > 0 {
					atOnce = h.Counts[0]
				}
				if h.Count != uint64(i+1) || atOnce != uint64(i+1) {
					t.Fatalf("after %s: AcquireWait counts %d turns (%d at once), want %d: the call took no permit of a fair queue", call.name, h.Count, atOnce, i+1)
				}
			}
			if n, w := tr.turns.Load(), tr.waited.Load(); n != int64(len(calls)) || w != 0 {
				t.Errorf("the tracer saw %d turns, %d of them waited; want %d, none waited", n, w, len(calls))
			}

			// The read's allocations: those of the same read on a bounded
			// pool (the pool path), not more (a dedicated connection and
			// a context.WithTimeout).
			bounded, unbounded := wrapMem(t, 4, tc.opts...), wrapUnbounded(t, tc.opts...)
			read := func(m *dbm.Manager) func() {
				return func() {
					if err := calls[0].run(ctx, m); err != nil {
						t.Fatal(err)
					}
				}
			}
			b, u := testing.AllocsPerRun(200, read(bounded)), testing.AllocsPerRun(200, read(unbounded))
			if u > b {
				t.Errorf("a read allocates %.0f times on an unbounded pool, %.0f on a bounded one; want no more", u, b)
			}
		})
	}
	t.Run("NoAcquireTimeout", func(t *testing.T) {
		m := wrapUnbounded(t, dbm.WithAcquireTimeout(dbm.NoAcquireTimeout))
		for _, call := range calls {
			if err := call.run(ctx, m); err != nil {
				t.Fatalf("%s: %v", call.name, err)
			}
		}
		if h := m.Stats().AcquireWait; h.Count != 0 {
			t.Errorf("AcquireWait counts %d turns with NoAcquireTimeout on an unbounded pool, want 0: no queue", h.Count)
		}
	})
}

// wrapSQLite wraps an in-memory SQLite pool left unbounded, as sql.Open
// makes it, with the given acquire timeout.
func wrapSQLite(t *testing.T, acquire time.Duration, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	db, err := sql.Open(dbm.DriverSQLite, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, dbm.DriverSQLite, append(opts, dbm.WithAcquireTimeout(acquire))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestWrapUnboundedFollowsALaterBound: the application bounds a wrapped
// pool after Wrap (MaxOpenConns 1 on Manager.DB), and a transaction holds
// the one connection, begun before or after the bound was set. Every kind
// of call then waits in the fair queue, which followed the bound: each
// fails with ErrPoolTimeout after the acquire timeout, the waits counted
// in AcquireWait; and with a longer timeout 16 callers that arrive one
// after another are served in arrival order once the transaction ends
// (see TestFairQueueServesInArrivalOrder). Without the queue the callers
// waited in database/sql, which serves them in random order and shows no
// QueueLength.
func TestWrapUnboundedFollowsALaterBound(t *testing.T) {
	for _, order := range []string{"bound then tx", "tx then bound"} {
		t.Run("timeout/"+order, func(t *testing.T) {
			m := wrapSQLite(t, 50*time.Millisecond)
			var tx *dbm.Tx
			begin := func() {
				var err error
				if tx, err = m.BeginTx(t.Context(), nil); err != nil {
					t.Fatal(err)
				}
			}
			if order == "tx then bound" {
				begin()
				m.DB().SetMaxOpenConns(1)
			} else {
				m.DB().SetMaxOpenConns(1)
				begin()
			}
			for _, call := range append(waitingCalls[:len(waitingCalls):len(waitingCalls)], connCall) {
				if err := call.run(t.Context(), m); !errors.Is(err, dbm.ErrPoolTimeout) {
					t.Errorf("%s on the bounded, held pool: %v, want ErrPoolTimeout", call.name, err)
				}
			}
			s := m.Stats()
			var waits uint64 // the waits that were not free at once
			for _, c := range s.AcquireWait.Counts[min(1, len(s.AcquireWait.Counts)):] {
				waits += c
			}
			if waits < uint64(len(waitingCalls)+1) || s.QueueLength != 0 {
				t.Errorf("AcquireWait counts %d waits, QueueLength %d; want the %d waits in the fair queue, none left", waits, s.QueueLength, len(waitingCalls)+1)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := m.Get(t.Context(), &n, "SELECT 1"); err != nil {
				t.Fatalf("Get once the transaction ended: %v", err)
			}
		})
	}
	t.Run("arrival order", func(t *testing.T) {
		tr := &orderTracer{}
		m := wrapSQLite(t, dbm.DefaultAcquireTimeout, dbm.WithTracer(tr))
		m.DB().SetMaxOpenConns(1)
		servesInArrivalOrder(t, m, tr, 16, append(waitingCalls[:len(waitingCalls):len(waitingCalls)], queryCall))
	})
}
