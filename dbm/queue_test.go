package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestFairQueueServesInArrivalOrder: with a pool of one connection held
// by a transaction, callers that arrive one after another (each starts
// once the one before it is seen waiting) get the connection in that
// order once the transaction ends. database/sql alone hands a freed
// connection to a random waiter: without the queue, 16 waiters come out
// in order about once in 16! runs. It runs on both paths (pool and
// connections of their own) and with reads, writes and transactions.
func TestFairQueueServesInArrivalOrder(t *testing.T) {
	const waiters = 16
	calls := append(waitingCalls[:len(waitingCalls):len(waitingCalls)], queryCall)
	for _, path := range managerPaths {
		for _, call := range calls {
			t.Run(path.name+"/"+call.name, func(t *testing.T) {
				// The tracer is told of each turn while the caller holds
				// the connection: the order it sees is the order served.
				tr := &orderTracer{}
				m := newSQLite(t, dbm.WithAcquireTimeout(path.acquire), dbm.WithTracer(tr))
				m.DB().SetMaxOpenConns(1)
				servesInArrivalOrder(t, m, tr, waiters, []waitingCall{call})
				s := m.Stats()
				if s.WaitCount < waiters || s.AcquireWait.Count < waiters+1 {
					t.Errorf("WaitCount = %d, AcquireWait.Count = %d; want the %d waits counted", s.WaitCount, s.AcquireWait.Count, waiters)
				}
				if s.QueueLength != 0 {
					t.Errorf("QueueLength = %d after the waits, want 0", s.QueueLength)
				}
			})
		}
	}
}

// servesInArrivalOrder holds m's one connection with a transaction, starts
// n callers one after another (calls in turn, each caller once the one
// before it is seen waiting), ends the transaction and checks that tr saw
// them served in that order.
func servesInArrivalOrder(t *testing.T, m *dbm.Manager, tr *orderTracer, n int, calls []waitingCall) {
	t.Helper()
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // ends the waits when the test fails early
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := calls[i%len(calls)].run(context.WithValue(context.Background(), waiterKey{}, i), m); err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
		})
		// QueueLength counts a caller just before it enters the
		// semaphore; it has its place once it is in the semaphore's list
		// of waiters. Waiting for that (not for the count alone) keeps a
		// preempted caller from being overtaken by the next one, which a
		// loaded machine showed.
		waitFor(t, "a caller never queued in the fair queue", func() bool {
			return m.Stats().QueueLength == i+1 && dbm.QueuedForTest(m) == i+1
		})
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	order := tr.served()
	if len(order) != n {
		t.Fatalf("%d turns seen, want %d", len(order), n)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("served in the order %v, want arrival order 0..%d", order, n-1)
		}
	}
}

// TestFairQueueTimeout: a wait in the queue is bounded by AcquireTimeout
// (ErrPoolTimeout, with the pool's counts), by the caller's context (its
// class), and a permit is given back by every way a resource ends, so that
// the next caller gets the connection.
func TestFairQueueTimeout(t *testing.T) {
	m := newSQLite(t, dbm.WithAcquireTimeout(50*time.Millisecond))
	m.DB().SetMaxOpenConns(1)
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = m.Get(t.Context(), &n, "SELECT 1")
	if !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("Get on a full pool: %v, want ErrPoolTimeout", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Get(ctx, &n, "SELECT 1"); !errors.Is(err, dbm.ErrCanceled) {
		t.Fatalf("Get with a canceled context on a full pool: %v, want ErrCanceled", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Rows ended by the end of their result, by Close, and by their
	// context, each give the permit back.
	rows, err := m.Query(t.Context(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := m.Get(t.Context(), &n, "SELECT 1"); err != nil {
		t.Fatalf("Get after the rows' result ended: %v", err)
	}
	_ = rows.Close()
	qctx, qcancel := context.WithCancel(t.Context())
	if _, err := m.Query(qctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	qcancel()
	waitFor(t, "rows whose context ended kept the connection", func() bool { return m.Get(t.Context(), &n, "SELECT 1") == nil })
	c, err := m.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Get(t.Context(), &n, "SELECT 1"); !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("Get while a Conn holds the pool: %v, want ErrPoolTimeout", err)
	}
	_ = c.Close()
	if err := m.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after Conn.Close: %v", err)
	}
}

// TestFairQueueBoundsEveryWaiter: the queue bounds its waits with one
// timer armed for the first waiter's deadline. A caller whose context is
// cancelled in the queue gets ErrCanceled; callers that then wait together
// on the held pool each get ErrPoolTimeout (wrapping
// context.DeadlineExceeded, as when each wait had a context.WithTimeout of
// its own), whatever the kind of call; one whose own deadline comes before
// the bound gets ErrTimeout from its context. None keeps a permit: the
// pool's connection is free again for the next caller.
func TestFairQueueBoundsEveryWaiter(t *testing.T) {
	const bound = 30 * time.Millisecond
	m := newSQLite(t, dbm.WithAcquireTimeout(bound))
	m.DB().SetMaxOpenConns(1)
	tx, err := m.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// First a caller whose context is cancelled while it is in the
	// queue, then the others.
	cctx, cancel := context.WithCancel(t.Context())
	cancelled := make(chan error, 1)
	go func() { cancelled <- waitingCalls[0].run(cctx, m) }()
	waitFor(t, "the caller never queued", func() bool { return dbm.QueuedForTest(m) == 1 })
	cancel()
	if err := <-cancelled; !errors.Is(err, dbm.ErrCanceled) {
		t.Errorf("cancelled waiter: %v, want ErrCanceled", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*len(waitingCalls)+1)
	for i := range errs {
		wg.Go(func() {
			ctx := t.Context()
			if i == len(errs)-1 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, bound/3) // ends before the bound: not the queue's timer
				defer cancel()
			}
			errs[i] = waitingCalls[i%len(waitingCalls)].run(ctx, m)
		})
	}
	wg.Wait()
	for i, err := range errs[:len(errs)-1] {
		if !errors.Is(err, dbm.ErrPoolTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiter %d (%s): %v, want ErrPoolTimeout wrapping context.DeadlineExceeded", i, waitingCalls[i%len(waitingCalls)].name, err)
		}
	}
	if err := errs[len(errs)-1]; !errors.Is(err, dbm.ErrTimeout) || errors.Is(err, dbm.ErrPoolTimeout) {
		t.Errorf("waiter with a deadline before the bound: %v, want ErrTimeout", err)
	}
	if q, n := m.Stats().QueueLength, dbm.QueuedForTest(m); q != 0 || n != 0 {
		t.Errorf("QueueLength %d, %d in the queue's list after the waits, want 0", q, n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := m.Get(t.Context(), &n, "SELECT 1"); err != nil {
		t.Fatalf("Get after the waits: %v", err)
	}
}

// waitingCall is a call that takes a connection, and may have to wait
// for one.
type waitingCall struct {
	name string
	run  func(ctx context.Context, m *dbm.Manager) error
}

// waitingCalls are the calls that wait for a connection, each ending what
// it took.
var waitingCalls = []waitingCall{
	{"Get", func(ctx context.Context, m *dbm.Manager) error { var n int; return m.Get(ctx, &n, "SELECT 1") }},
	{"Exec", func(ctx context.Context, m *dbm.Manager) error { _, err := m.Exec(ctx, "SELECT 1"); return err }},
	{"BeginTx", func(ctx context.Context, m *dbm.Manager) error {
		tx, err := m.BeginTx(ctx, nil)
		if err == nil {
			err = tx.Rollback()
		}
		return err
	}},
	{"Ping", func(ctx context.Context, m *dbm.Manager) error { return m.Ping(ctx) }},
}

// queryCall is Query, its Rows closed at once.
var queryCall = waitingCall{"Query", func(ctx context.Context, m *dbm.Manager) error {
	rows, err := m.Query(ctx, "SELECT 1")
	if err == nil {
		err = rows.Close()
	}
	return err
}}

// waiterKey carries a waiter's arrival number to orderTracer.
type waiterKey struct{}

// orderTracer records the arrival numbers of the callers in the order they
// got their connection.
type orderTracer struct {
	mu    sync.Mutex
	order []int
}

func (*orderTracer) Start(ctx context.Context, _ dbm.TraceOp) context.Context { return ctx }
func (*orderTracer) End(context.Context, dbm.TraceOp, dbm.TraceResult)        {}
func (o *orderTracer) TraceAcquire(ctx context.Context, _ dbm.TraceOp, res dbm.TraceResult) {
	if i, ok := ctx.Value(waiterKey{}).(int); ok && res.Err == nil {
		o.mu.Lock()
		o.order = append(o.order, i)
		o.mu.Unlock()
	}
}

func (o *orderTracer) served() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.order...)
}

// TestFairQueueFollowsMaxOpenConns: the queue follows a MaxOpenConns the
// application changes on Manager.DB, up and down, whether or not
// connections are held at the time of the change. The manager asks the pool
// for its bound only when others hold permits (a caller alone cannot
// exceed any bound), so each step here is one such case.
func TestFairQueueFollowsMaxOpenConns(t *testing.T) {
	m := newSQLite(t, dbm.WithAcquireTimeout(50*time.Millisecond))
	ctx := t.Context()
	get := func() error {
		// A bound not followed would make Get wait in database/sql:
		// its own deadline ends that wait with ErrTimeout instead.
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var n int
		return m.Get(gctx, &n, "SELECT 1")
	}
	hold := func() *dbm.Conn {
		t.Helper()
		c, err := m.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	full := func(step string) {
		t.Helper()
		if err := get(); !errors.Is(err, dbm.ErrPoolTimeout) {
			t.Fatalf("%s: Get = %v, want ErrPoolTimeout", step, err)
		}
	}
	free := func(step string) {
		t.Helper()
		if err := get(); err != nil {
			t.Fatalf("%s: Get = %v, want a connection", step, err)
		}
	}

	// Down from the default while nothing is held: followed once a
	// permit is held.
	m.DB().SetMaxOpenConns(2)
	a, b := hold(), hold()
	full("bound lowered to 2, 2 held")
	// Up while every permit is held: the caller that would wait finds the
	// new one.
	m.DB().SetMaxOpenConns(3)
	free("bound raised to 3, 2 held")
	c := hold()
	full("bound 3, 3 held")
	// Down while more than the new bound are held: the permits given back
	// are kept until the bound is met.
	m.DB().SetMaxOpenConns(1)
	full("bound lowered to 1, 3 held")
	_ = a.Close()
	full("bound 1, 2 held")
	_ = b.Close()
	full("bound 1, 1 held")
	_ = c.Close()
	free("bound 1, none held")
	a = hold()
	full("bound 1, 1 held again")
	_ = a.Close()
	// Up with nothing held, then used by several at once.
	m.DB().SetMaxOpenConns(2)
	a = hold()
	free("bound raised to 2, 1 held")
	_ = a.Close()
	if s := m.Stats(); s.InUse != 0 || s.QueueLength != 0 {
		t.Errorf("after the calls: InUse %d, QueueLength %d; want 0, 0", s.InUse, s.QueueLength)
	}
}

// freeConnTracer checks the pool when a connection goes back and when the
// queue gives a turn: the connection must be free at both.
type freeConnTracer struct {
	db        func() sql.DBStats
	turns     atomic.Int64
	busyTurns atomic.Int64 // turns that found every connection in use
	releases  atomic.Int64
	early     atomic.Int64 // releases reported before the connection was back
}

func (*freeConnTracer) Start(ctx context.Context, _ dbm.TraceOp) context.Context { return ctx }
func (*freeConnTracer) End(context.Context, dbm.TraceOp, dbm.TraceResult)        {}
func (f *freeConnTracer) TraceAcquire(_ context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	if res.Err != nil {
		return
	}
	f.turns.Add(1)
	// A write's turn is reported once it has its connection of its own
	// (see Manager.acquire): that one is in use by the caller itself.
	if s := f.db(); s.InUse >= s.MaxOpenConnections && op.Name != dbm.TraceExec {
		f.busyTurns.Add(1)
	}
}

// TraceRelease runs after the connection went back and before the
// permit does: the pool's one connection must be free.
func (f *freeConnTracer) TraceRelease(context.Context, dbm.TraceOp, dbm.TraceResult) {
	f.releases.Add(1)
	if f.db().InUse > 0 {
		f.early.Add(1)
	}
}

// TestFairQueueHandsOverAFreeConnection: every way a connection ends gives
// it back to the pool before the permit goes back to the queue, so the
// caller the queue wakes finds it free; in the other order it would wait in
// database/sql (or, below the bound, open a connection of its own). A pool
// of one and callers that take turns with every kind of call: when each
// connection is reported released (the permit follows) and at each turn the
// connection is free, and nobody waited in database/sql.
func TestFairQueueHandsOverAFreeConnection(t *testing.T) {
	for _, path := range managerPaths {
		t.Run(path.name, func(t *testing.T) {
			tr := &freeConnTracer{}
			m := newSQLite(t, dbm.WithAcquireTimeout(path.acquire), dbm.WithTracer(tr))
			tr.db = m.DB().Stats
			m.DB().SetMaxOpenConns(1)
			ctx := t.Context()
			calls := append(waitingCalls[:len(waitingCalls):len(waitingCalls)],
				waitingCall{"ExecuteQuery", func(ctx context.Context, m *dbm.Manager) error {
					var out []int
					return m.ExecuteQuery(ctx, &out, "SELECT 1")
				}},
				waitingCall{"Query", func(ctx context.Context, m *dbm.Manager) error {
					rows, err := m.Query(ctx, "SELECT 1")
					if err != nil {
						return err
					}
					for rows.Next() {
					}
					return rows.Close()
				}})
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 40 {
						if err := calls[(g+i)%len(calls)].run(ctx, m); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if n := tr.early.Load(); n > 0 || tr.releases.Load() == 0 {
				t.Errorf("%d of %d releases came before the connection was back in the pool", n, tr.releases.Load())
			}
			if n := tr.busyTurns.Load(); n > 0 {
				t.Errorf("%d of %d turns found the pool's one connection in use", n, tr.turns.Load())
			}
			if w := m.DB().Stats().WaitCount; w > 0 {
				t.Errorf("database/sql's WaitCount = %d, want 0: callers the queue let through waited in the pool", w)
			}
		})
	}
}

// TestFairQueueLoweredBoundThenBurst: MaxOpenConns lowered on Manager.DB
// while no permit is held, then callers arriving at once. Only the first
// may skip asking the pool for its bound; had every caller of the burst
// seen none held, several would take permits of the old bound and wait
// inside database/sql, past AcquireTimeout (a review found that, 2 bursts
// in 100 under -race). Each caller but the one holding the connection
// must get ErrPoolTimeout. Also from unlimited: a pool from Wrap without
// a bound, whose queue is unlimited until the bound is set.
func TestFairQueueLoweredBoundThenBurst(t *testing.T) {
	for i := range 60 {
		var m *dbm.Manager
		if i%2 == 0 {
			m = newSQLite(t, dbm.WithAcquireTimeout(20*time.Millisecond))
		} else {
			m = wrapSQLite(t, 20*time.Millisecond)
		}
		m.DB().SetMaxOpenConns(1)
		start := make(chan struct{})
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			conns []*dbm.Conn
			errs  []error
		)
		for range 64 {
			wg.Go(func() {
				<-start
				// A caller waiting in database/sql is ended by this
				// deadline, with another error than ErrPoolTimeout.
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				c, err := m.Conn(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else {
					conns = append(conns, c)
				}
			})
		}
		close(start)
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
		if len(conns) != 1 {
			t.Fatalf("%d callers got a connection with MaxOpenConns 1", len(conns))
		}
		for _, err := range errs {
			if !errors.Is(err, dbm.ErrPoolTimeout) {
				t.Fatalf("a caller past the queue: %v, want ErrPoolTimeout", err)
			}
		}
		_ = m.Close()
	}
}

// TestFairQueueFollowsABoundAfterUnlimited: a bound set again after
// MaxOpenConns 0 (unlimited, which the queue follows as its largest size)
// is followed at once. Taking the free permits one at a time, the shrink
// took about 2^40 TryAcquires and the caller never came back.
func TestFairQueueFollowsABoundAfterUnlimited(t *testing.T) {
	m := newSQLite(t, dbm.WithAcquireTimeout(50*time.Millisecond))
	ctx := t.Context()
	c, err := m.Conn(ctx) // held: the next callers ask the pool for its bound
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := func(step string) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			var n int
			done <- m.Get(ctx, &n, "SELECT 1")
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: Get = %v", step, err)
			}
		case <-time.After(30 * time.Second): // a liveness bound, not a timing: it takes microseconds
			t.Fatalf("%s: Get did not return", step)
		}
	}
	m.DB().SetMaxOpenConns(0)
	get("bound removed")
	m.DB().SetMaxOpenConns(2)
	get("bound 2 set again")
	d, err := m.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := m.Get(ctx, &n, "SELECT 1"); !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("bound 2, 2 held: Get = %v, want ErrPoolTimeout", err)
	}
}
