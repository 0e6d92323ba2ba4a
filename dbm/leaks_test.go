package dbm_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// newMem returns a manager over the in-memory driver (every query returns
// rows rows) and closes it when the test ends.
func newMem(t testing.TB, rows int, opts ...dbm.Option) *dbm.Manager {
	t.Helper()
	db, err := sql.Open(memdriver.Name, fmt.Sprint(rows))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, "mem", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// line returns the line of its caller, for expected locations.
func line() int {
	_, _, l, _ := runtime.Caller(1)
	return l
}

func at(l int) string { return fmt.Sprintf("leaks_test.go:%d", l) }

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the log lines that contain every one of words.
func (l *logBuffer) lines(words ...string) []string {
	var out []string
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := ln != ""
		for _, w := range words {
			ok = ok && strings.Contains(ln, w)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

func TestLeaksReportsOpenRowsAndTx(t *testing.T) {
	ctx := context.Background()
	m := newMem(t, 3)
	rows, err := m.Query(ctx, "SELECT id, name FROM users WHERE name = ?", "a-secret-argument")
	rowsLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	tx, err := m.BeginTx(ctx, nil)
	txLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	txRows, err := tx.Query(ctx, "SELECT 1")
	txRowsLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}

	leaks := m.Leaks()
	want := []dbm.Leak{
		{Kind: "rows", Query: "SELECT id, name FROM users WHERE name = ?", Location: at(rowsLine)},
		{Kind: "tx", Location: at(txLine)},
		{Kind: "rows", Query: "SELECT 1", Location: at(txRowsLine)},
	}
	if len(leaks) != len(want) {
		t.Fatalf("Leaks() = %v, want %d entries", leaks, len(want))
	}
	for i, l := range leaks {
		if l.Kind != want[i].Kind || l.Query != want[i].Query || l.Location != want[i].Location || l.Age < 0 || l.Stack != "" {
			t.Errorf("Leaks()[%d] = %+v, want %+v (oldest first)", i, l, want[i])
		}
		if strings.Contains(fmt.Sprint(l), "a-secret-argument") {
			t.Errorf("Leaks()[%d] holds an argument value: %v", i, l)
		}
	}

	if err := txRows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil { // idempotent, and forgets nothing else
		t.Fatal(err)
	}
	if leaks := m.Leaks(); len(leaks) != 0 {
		t.Fatalf("Leaks() after closing everything = %v", leaks)
	}
}

func TestLeaksWithTxAndIter(t *testing.T) {
	ctx := context.Background()
	m := newMem(t, 5)
	var inside []dbm.Leak
	withTxLine := line() + 1
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		inside = m.Leaks()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inside) != 1 || inside[0].Kind != "tx" || inside[0].Location != at(withTxLine) {
		t.Fatalf("Leaks() inside WithTx = %v, want the tx at %s", inside, at(withTxLine))
	}

	n := 0
	iterLine := line() + 1
	for _, err := range dbm.Iter[benchRow](ctx, m, benchQuery) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			inside = m.Leaks()
		}
		if n++; n == 2 {
			break // the rows are closed by Iter: not a leak
		}
	}
	if len(inside) != 1 || inside[0].Kind != "rows" || inside[0].Location != at(iterLine) {
		t.Fatalf("Leaks() inside Iter = %v, want the rows at %s", inside, at(iterLine))
	}
	if leaks := m.Leaks(); len(leaks) != 0 {
		t.Fatalf("Leaks() after breaking out of Iter = %v, want none", leaks)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close = %v, want nil: nothing is open", err)
	}
}

// TestLeaksConcurrent opens and closes rows and transactions from many
// goroutines while another takes snapshots and runs the threshold check:
// every snapshot names only this file's lines, and nothing is left at the
// end (run it with -race).
func TestLeaksConcurrent(t *testing.T) {
	ctx := context.Background()
	logs := &logBuffer{}
	m := newMem(t, 2, dbm.WithLeakThreshold(time.Nanosecond), dbm.WithLogger(logs.logger())) // the background check runs too
	m.DB().SetMaxOpenConns(8)
	const workers, rounds = 8, 200
	var workersWG, watcherWG sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, workers+1)
	watcherWG.Add(1)
	go func() {
		defer watcherWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, l := range m.Leaks() {
				if !strings.HasPrefix(l.Location, "leaks_test.go:") || (l.Kind != "rows" && l.Kind != "tx") {
					errs <- fmt.Errorf("snapshot holds %+v", l)
					return
				}
			}
			m.CheckLeaksAt(time.Now())
		}
	}()
	for w := range workers {
		workersWG.Add(1)
		go func() {
			defer workersWG.Done()
			for i := range rounds {
				var err error
				switch (w + i) % 3 {
				case 0:
					var rows *dbm.Rows
					if rows, err = m.Query(ctx, "SELECT 1"); err == nil {
						for rows.Next() {
						}
						err = rows.Close()
					}
				case 1:
					var tx *dbm.Tx
					if tx, err = m.BeginTx(ctx, nil); err == nil {
						err = tx.Rollback()
					}
				case 2:
					err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
						for _, err := range dbm.Iter[benchRow](ctx, tx, benchQuery) {
							if err != nil {
								return err
							}
						}
						return nil
					})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	workersWG.Wait()
	close(stop)
	watcherWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if leaks := m.Leaks(); len(leaks) != 0 {
		t.Fatalf("Leaks() after every resource was closed = %v", leaks)
	}
	// Close stops the background check, so the log is complete: each WARN
	// (over the 1ns threshold) is matched by one INFO when closed, and
	// LeaksDetected counts the WARNs.
	if err := m.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	s := m.Stats()
	warns, infos := logs.lines("level=WARN", "leak threshold"), logs.lines("level=INFO", "closed")
	if uint64(len(warns)) != s.LeaksDetected || len(warns) != len(infos) {
		t.Errorf("%d WARN and %d INFO lines, LeaksDetected = %d; want equal", len(warns), len(infos), s.LeaksDetected)
	}
}

// A resource closed while the threshold check is logging its WARN gets its
// INFO after the WARN, never before, and is counted before either is
// logged.
func TestLeakWarnComesBeforeItsInfo(t *testing.T) {
	h := &orderHandler{release: make(chan struct{}), warned: make(chan struct{})}
	m := newMem(t, 1, dbm.WithLeakThreshold(time.Hour), dbm.WithLogger(slog.New(h)))
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		m.CheckLeaksAt(time.Now().Add(2 * time.Hour))
	}()
	<-h.warned // the WARN is being handled
	if n := m.Stats().LeaksDetected; n != 1 {
		t.Errorf("LeaksDetected = %d while the WARN is being logged, want 1", n)
	}
	if err := rows.Close(); err != nil { // closed before the WARN is out
		t.Fatal(err)
	}
	close(h.release)
	<-checked
	if got := strings.Join(h.records(), ", "); got != "WARN, INFO" {
		t.Fatalf("records = %s; want the WARN, then the INFO", got)
	}
}

// orderHandler records the level of each record, holding the first WARN
// until release is closed (without blocking other records).
type orderHandler struct {
	mu              sync.Mutex
	levels          []string
	release, warned chan struct{}
	once            sync.Once
}

func (h *orderHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *orderHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *orderHandler) WithGroup(string) slog.Handler            { return h }
func (h *orderHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.once.Do(func() { close(h.warned); <-h.release })
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level.String())
	return nil
}

func (h *orderHandler) records() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.levels)
}

// dropRows opens rows and loses them without closing them.
//
//go:noinline
func dropRows(t *testing.T, m *dbm.Manager, query string) (queryLine int) {
	queryLine = line() + 1
	if _, err := m.Query(context.Background(), query); err != nil {
		t.Fatal(err)
	}
	return queryLine
}

// dropTx begins a transaction and loses it.
//
//go:noinline
func dropTx(t *testing.T, m *dbm.Manager) (beginLine int) {
	beginLine = line() + 1
	if _, err := m.BeginTx(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return beginLine
}

// gcUntil runs the garbage collector until cond holds. Reclaiming closes
// on a goroutine of its own (lib/pq drains the rest of a result over the
// network), so it waits for that too, up to a generous bound that only a
// broken reclaim reaches.
func gcUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n := 1; ; n++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d garbage collections in 30s: %s", n, what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

func TestLeaksReclaimedByGC(t *testing.T) {
	logs := &logBuffer{}
	m := newSQLite(t, dbm.WithLogger(logs.logger()))
	if _, err := m.Exec(context.Background(), "CREATE TABLE t4 (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(context.Background(), "INSERT INTO t4 VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	rowsLine := dropRows(t, m, "SELECT id FROM t4")
	txLine := dropTx(t, m)
	if s := m.Stats(); s.InUse != 2 || len(m.Leaks()) != 2 {
		t.Fatalf("InUse = %d, Leaks() = %v; want 2 of each before GC", s.InUse, m.Leaks())
	}
	m.SweepLeaksAt(time.Now().Add(time.Hour)) // what the background sweeper does after 50 ms
	gcUntil(t, "the dropped rows and transaction were not reclaimed", func() bool {
		return m.Stats().LeaksReclaimed == 2
	})
	s := m.Stats()
	if s.InUse != 0 || len(m.Leaks()) != 0 || s.Rollbacks != 1 {
		t.Fatalf("after reclaim: InUse = %d, Leaks() = %v, Rollbacks = %d; want 0, none, 1", s.InUse, m.Leaks(), s.Rollbacks)
	}
	for _, want := range [][]string{{"kind=rows", "location=" + at(rowsLine), `statement="SELECT id FROM t4"`}, {"kind=tx", "location=" + at(txLine)}} {
		if got := logs.lines(append(want, "level=WARN", "reclaimed by the garbage collector")...); len(got) != 1 {
			t.Errorf("reclaim WARN lines with %q: %q\nlog:\n%s", want, got, logs)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close after reclaim = %v, want nil", err)
	}
}

func TestLeakThresholdLoggedOnce(t *testing.T) {
	logs := &logBuffer{}
	m := newMem(t, 1, dbm.WithLeakThreshold(time.Hour), dbm.WithLogger(logs.logger()))
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	rowsLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	m.CheckLeaksAt(time.Now().Add(time.Minute)) // under the threshold
	if s := m.Stats(); s.LeaksDetected != 0 || logs.String() != "" {
		t.Fatalf("under the threshold: LeaksDetected = %d, log %q", s.LeaksDetected, logs)
	}
	for range 3 {
		m.CheckLeaksAt(time.Now().Add(2 * time.Hour))
	}
	warns := logs.lines("level=WARN", "open longer than the leak threshold", "kind=rows", "location="+at(rowsLine), `statement="SELECT id FROM users"`, "age=")
	if len(warns) != 1 || m.Stats().LeaksDetected != 1 {
		t.Fatalf("WARN lines %q, LeaksDetected = %d; want one of each\nlog:\n%s", warns, m.Stats().LeaksDetected, logs)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if infos := logs.lines("level=INFO", "leaked rows closed", "location="+at(rowsLine)); len(infos) != 1 {
		t.Fatalf("INFO lines after Close %q, want one\nlog:\n%s", infos, logs)
	}
}

// TestLeakThresholdFromConfig: Config.LeakThreshold starts the background
// check, which Close stops (goleak in TestMain fails otherwise).
func TestLeakThresholdFromConfig(t *testing.T) {
	m, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", LeakThreshold: time.Millisecond, LeakStacks: true})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := m.Query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	leaks := m.Leaks()
	if len(leaks) != 1 || !strings.Contains(leaks[0].Stack, "TestLeakThresholdFromConfig") || !strings.Contains(leaks[0].Stack, "leaks_test.go:") {
		t.Fatalf("Leaks() with LeakStacks = %+v, want the test function in Stack", leaks)
	}
	// The background check logs it (to the default, discarding logger) once
	// the threshold has passed: wait for the counter, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().LeaksDetected == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.Stats().LeaksDetected != 1 {
		t.Fatalf("LeaksDetected = %d, want 1 from the background check", m.Stats().LeaksDetected)
	}
	_ = rows.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseReportsLeaks(t *testing.T) {
	ctx := context.Background()
	logs := &logBuffer{}
	m := newSQLite(t, dbm.WithLogger(logs.logger()))
	rows, err := m.Query(ctx, "SELECT 1")
	rowsLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	tx, err := m.BeginTx(ctx, nil)
	txLine := line() - 1
	if err != nil {
		t.Fatal(err)
	}
	err = m.Close()
	if !errors.Is(err, dbm.ErrLeaked) {
		t.Fatalf("Close with open rows and tx = %v, want ErrLeaked", err)
	}
	var le *dbm.LeakError
	if !errors.As(err, &le) || len(le.Leaks) != 2 || le.Leaks[0].Location != at(rowsLine) || le.Leaks[1].Location != at(txLine) {
		t.Fatalf("LeakError = %+v, want rows at %s and tx at %s", le, at(rowsLine), at(txLine))
	}
	for _, want := range []string{"2 still open", `rows "SELECT 1" opened at ` + at(rowsLine), "tx opened at " + at(txLine)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Close error %q does not contain %q", err, want)
		}
	}
	// The pool is closed all the same, and so are the rows and the
	// transaction (rolled back): no connection is left open.
	if _, err := m.Exec(ctx, "SELECT 1"); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Exec after Close = %v, want ErrClosed", err)
	}
	if s := m.Stats(); s.OpenConnections != 0 || s.InUse != 0 || s.Rollbacks != 1 || len(m.Leaks()) != 0 {
		t.Errorf("after Close: OpenConnections = %d, InUse = %d, Rollbacks = %d, Leaks() = %v; want 0, 0, 1, none",
			s.OpenConnections, s.InUse, s.Rollbacks, m.Leaks())
	}
	if rows.Next() {
		t.Error("rows.Next after Close = true; want the rows closed")
	}
	// What Close ended is logged once, with the locations.
	if got := logs.lines("level=WARN", "Close closed rows and transactions", "count=2", `rows \"SELECT 1\" opened at `+at(rowsLine), "tx opened at "+at(txLine)); len(got) != 1 {
		t.Errorf("Close's WARN lines: %q; want one naming both\nlog:\n%s", got, logs)
	}
	_ = rows.Close()
	if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Commit after Close = %v; want ErrClosed", err)
	}
	_ = tx.Rollback()
	if err2 := m.Close(); !errors.Is(err2, dbm.ErrLeaked) {
		t.Errorf("second Close = %v, want the same error", err2)
	}
	if got := logs.lines("Close closed rows"); len(got) != 1 {
		t.Errorf("Close's WARN logged %d times after two Closes; want once", len(got))
	}
}

func TestLeakTrackingOff(t *testing.T) {
	m := newMem(t, 1, dbm.WithLeakTracking(false))
	rows, err := m.Query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if leaks := m.Leaks(); leaks != nil {
		t.Fatalf("Leaks() with tracking off = %v, want nil", leaks)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close with tracking off = %v, want nil", err)
	}
}

// A Tracer's transaction span ends, once, when the garbage collector's
// cleanup rolls back a dropped transaction.
func TestReclaimedTxEndsItsSpan(t *testing.T) {
	rec := &recorder{}
	m := newSQLite(t, dbm.WithTracer(rec))
	dropTx(t, m)
	m.SweepLeaksAt(time.Now().Add(time.Hour))
	gcUntil(t, "the dropped transaction was not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 1 })
	var ends []event
	for _, e := range rec.take() {
		if e.op.Name == dbm.TraceTx && e.phase == "end" {
			ends = append(ends, e)
		}
	}
	if len(ends) != 1 || ends[0].res.Committed || !errors.Is(ends[0].res.Err, dbm.ErrLeaked) {
		t.Fatalf("tx end events = %+v; want one, not committed, with an error matching ErrLeaked", ends)
	}
}
