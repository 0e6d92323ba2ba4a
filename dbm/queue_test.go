package dbm_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
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
	calls := append(waitingCalls[:len(waitingCalls):len(waitingCalls)], waitingCall{"Query", func(ctx context.Context, m *dbm.Manager) error {
		rows, err := m.Query(ctx, "SELECT 1")
		if err == nil {
			err = rows.Close()
		}
		return err
	}})
	for _, path := range managerPaths {
		for _, call := range calls {
			t.Run(path.name+"/"+call.name, func(t *testing.T) {
				// The tracer is told of each turn while the caller holds
				// the connection: the order it sees is the order served.
				tr := &orderTracer{}
				m := newSQLite(t, dbm.WithAcquireTimeout(path.acquire), dbm.WithTracer(tr))
				m.DB().SetMaxOpenConns(1)
				tx, err := m.BeginTx(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				for i := range waiters {
					wg.Go(func() {
						if err := call.run(context.WithValue(context.Background(), waiterKey{}, i), m); err != nil {
							t.Errorf("waiter %d: %v", i, err)
						}
					})
					// QueueLength counts a caller just before it enters the
					// semaphore; it has entered once it is parked in
					// Acquire's select. Waiting for that (not for the count
					// alone) keeps a preempted caller from being overtaken
					// by the next one, which a loaded machine showed.
					waitFor(t, "a caller never queued", func() bool {
						return m.Stats().QueueLength == i+1 && parkedInAcquire() == i+1
					})
				}
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				order := tr.served()
				if len(order) != waiters {
					t.Fatalf("%d turns seen, want %d", len(order), waiters)
				}
				for i, got := range order {
					if got != i {
						t.Fatalf("served in the order %v, want arrival order 0..%d", order, waiters-1)
					}
				}
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

// parkedInAcquire counts the goroutines blocked in the select of
// semaphore.Weighted's Acquire: callers already in the queue's list of
// waiters (Acquire adds a waiter before it blocks).
func parkedInAcquire() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.HasPrefix(g, []byte("goroutine ")) && bytes.Contains(g, []byte(" [select")) &&
			bytes.Contains(g, []byte("semaphore.(*Weighted).Acquire")) {
			count++
		}
	}
	return count
}
