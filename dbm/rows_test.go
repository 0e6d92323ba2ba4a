package dbm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/dbmanager-go/dbmanager/dbm"
)

// panicScanner panics. Called inside database/sql's Scan (Rows.Scan, and
// the plans that use database/sql's conversions), it leaves the rows' lock
// held for good; the fast path calls it after Scan has returned.
type panicScanner struct{}

func (*panicScanner) Scan(any) error { panic("scanner bug") }

type panicRow struct {
	N panicScanner `db:"n"`
}

// panicRowSlow makes the scanning calls panic inside database/sql's Scan: a
// float32 has no fast conversion (internal/scan/conv.go), so its plan hands every
// column to database/sql, which calls the Scanner with the lock held.
type panicRowSlow struct {
	N panicScanner `db:"n"`
	F float32      `db:"f"`
}

// A panicking sql.Scanner must reach the caller of Iter and of Rows.Scan
// (with the usual deferred Close) instead of hanging it: database/sql's Close
// would wait forever for the lock the panicking Scan holds.
func TestScannerPanicReachesTheCaller(t *testing.T) {
	m := newSQLite(t)
	ctx := context.Background()
	cases := map[string]func(){
		"Iter": func() {
			for _, err := range dbm.Iter[panicRow](ctx, m, "SELECT 1 AS n") {
				_ = err
			}
		},
		"Iter of pointers": func() {
			for _, err := range dbm.Iter[*panicRow](ctx, m, "SELECT 1 AS n") {
				_ = err
			}
		},
		"Rows.StructScan": func() {
			rows, err := m.Query(ctx, "SELECT 1 AS n")
			if err != nil {
				panic(err)
			}
			defer rows.Close()
			for rows.Next() {
				var r panicRow
				_ = rows.StructScan(&r)
			}
		},
		"Iter, database/sql's conversions": func() {
			for _, err := range dbm.Iter[panicRowSlow](ctx, m, "SELECT 1 AS n, 1.5 AS f") {
				_ = err
			}
		},
		"Rows.StructScan, database/sql's conversions": func() {
			rows, err := m.Query(ctx, "SELECT 1 AS n, 1.5 AS f")
			if err != nil {
				panic(err)
			}
			defer rows.Close()
			for rows.Next() {
				var r panicRowSlow
				_ = rows.StructScan(&r)
			}
		},
		"Rows.Scan": func() {
			rows, err := m.Query(ctx, "SELECT 1 AS n")
			if err != nil {
				panic(err)
			}
			defer rows.Close()
			for rows.Next() {
				_ = rows.Scan(new(panicScanner))
			}
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan any, 1)
			go func() {
				defer func() { done <- recover() }()
				run()
			}()
			select {
			case v := <-done:
				if v != "scanner bug" {
					t.Fatalf("recovered %v, want the scanner's panic", v)
				}
			case <-time.After(30 * time.Second): // a hang, not a slow machine
				t.Fatal("the caller still blocked 30s after the Scanner panicked")
			}
			if leaks := m.Leaks(); len(leaks) != 0 {
				t.Errorf("Leaks() = %v: rows abandoned after a panic are not open resources the caller could close", leaks)
			}
		})
	}
}

func TestCloseAfterScanPanicSaysTheConnectionIsLost(t *testing.T) {
	m := newSQLite(t)
	rows, err := m.Query(context.Background(), "SELECT 1 AS n")
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		rows.Next()
		_ = rows.Scan(new(panicScanner))
	}()
	if err := rows.Close(); !errors.Is(err, dbm.ErrConnection) {
		t.Fatalf("Close after a panicking Scan = %v, want ErrConnection", err)
	}
}

// Rows.Err is the same error however often it is asked for, and counts
// once in Stats.
func TestRowsErrCountsOnce(t *testing.T) {
	m, mock := newMock(t, dbm.DriverPostgres)
	mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1).RowError(0, errors.New("stream broke")))
	rows, err := m.Query(context.Background(), "SELECT n FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	first, second := rows.Err(), rows.Err()
	if first == nil || first != second {
		t.Fatalf("Err() = %v, then %v; want the same error twice", first, second)
	}
	if n := m.Stats().Errors; n != 1 {
		t.Errorf("Stats().Errors = %d after asking Err twice, want 1", n)
	}
}

// One destination type, several column lists: each result gets its own scan
// plan, whatever was cached for the type before.
func TestScanPlanPerColumnList(t *testing.T) {
	m := newSQLite(t)
	ctx := context.Background()
	type pair struct {
		A string `db:"a"`
		B string `db:"b"`
		C string `db:"c"`
	}
	queries := []struct {
		q    string
		want pair
	}{
		{"SELECT 'x' AS a, 'y' AS b", pair{A: "x", B: "y"}},
		{"SELECT 'x' AS b, 'y' AS a", pair{A: "y", B: "x"}},
		{"SELECT 'x' AS c, 'y' AS a", pair{A: "y", C: "x"}},
		{"SELECT 'x' AS a, 'y' AS b, 'z' AS c", pair{A: "x", B: "y", C: "z"}},
		{"SELECT 'x' AS b, 'y' AS a", pair{A: "y", B: "x"}}, // cached now
	}
	for _, tc := range queries {
		got, err := dbm.One[pair](ctx, m, tc.q)
		if err != nil || got != tc.want {
			t.Errorf("%s: One = %+v, %v; want %+v", tc.q, got, err, tc.want)
		}
		var all []pair
		if err := m.ExecuteQuery(ctx, &all, tc.q); err != nil || len(all) != 1 || all[0] != tc.want {
			t.Errorf("%s: ExecuteQuery = %+v, %v; want [%+v]", tc.q, all, err, tc.want)
		}
	}
}

type blockingScanner struct{ entered, gate chan struct{} }

func (b *blockingScanner) Scan(any) error {
	close(b.entered)
	<-b.gate
	return nil
}

// Close from another goroutine while a Scan runs (database/sql allows it)
// is an ordinary Close, not a panicked scan: the rows are closed and the
// connection goes back.
func TestCloseDuringScanClosesTheRows(t *testing.T) {
	m := newMem(t, 3)
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("no row")
	}
	sc := &blockingScanner{entered: make(chan struct{}), gate: make(chan struct{})}
	scanDone := make(chan error, 1)
	go func() {
		var a, b, c, d, e, f, g any
		scanDone <- rows.Scan(sc, &a, &b, &c, &d, &e, &f, &g)
	}()
	<-sc.entered
	closeErr := make(chan error, 1)
	go func() { closeErr <- rows.Close() }()
	close(sc.gate)
	<-scanDone
	if err := <-closeErr; err != nil {
		t.Errorf("Close concurrent with a running Scan = %v, want nil", err)
	}
	if n := m.Stats().InUse; n != 0 {
		t.Errorf("after Close: %d connections in use", n)
	}
}

type panicOnce struct{ n *int }

func (p panicOnce) Scan(any) error {
	if *p.n++; *p.n == 1 {
		panic("bad value")
	}
	return nil
}

// A recovered Scanner panic marks the rows for good: a later successful
// Scan does not make Close wait for the lock the panicked Scan still holds.
func TestScanPanicThenScanAgainCloseReturns(t *testing.T) {
	m := newMem(t, 3)
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	var a, b, c, d, e, f, g any
	for range 2 {
		if !rows.Next() {
			t.Fatal("no row")
		}
		func() {
			defer func() { _ = recover() }()
			_ = rows.Scan(panicOnce{&calls}, &a, &b, &c, &d, &e, &f, &g)
		}()
	}
	done := make(chan error, 1)
	go func() { done <- rows.Close() }()
	select {
	case err := <-done:
		if !errors.Is(err, dbm.ErrConnection) {
			t.Errorf("Close = %v, want ErrConnection (the connection is lost)", err)
		}
	case <-time.After(30 * time.Second): // a hang, not a slow machine
		t.Fatal("Close hangs after a recovered Scanner panic and a later Scan")
	}
}

// A Scanner that panics inside ExecuteQuery: the panic reaches the caller
// unchanged, and the connection the rows were read from is lost to the
// pool with its permit (database/sql may hold the rows' lock, so they are
// never closed; docs/querying.md says so). On a pool of two, a read still
// succeeds after one such panic, and after two a read ends in
// ErrPoolTimeout instead of waiting without a bound.
func TestExecuteQueryScannerPanicLosesItsConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		run   func(m *dbm.Manager, q string) error
	}{
		{"fast path", "SELECT 1 AS n", func(m *dbm.Manager, q string) error {
			var out []panicRow
			return m.ExecuteQuery(context.Background(), &out, q)
		}},
		{"database/sql's conversions", "SELECT 1 AS n, 1.5 AS f", func(m *dbm.Manager, q string) error {
			var out []panicRowSlow
			return m.ExecuteQuery(context.Background(), &out, q)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSQLitePool(t, 100*time.Millisecond)
			read := func() error {
				var n []int64
				return m.ExecuteQuery(context.Background(), &n, "SELECT 1")
			}
			for i := 1; i <= 2; i++ {
				done := make(chan any, 1)
				go func() {
					defer func() { done <- recover() }()
					_ = tc.run(m, tc.query)
				}()
				select {
				case v := <-done:
					if v != "scanner bug" {
						t.Fatalf("panic %d: recovered %v, want the scanner's panic", i, v)
					}
				case <-time.After(30 * time.Second): // a hang, not a slow machine
					t.Fatalf("panic %d: the caller still blocked 30s after the Scanner panicked", i)
				}
				err := read()
				if i == 1 && err != nil {
					t.Fatalf("a read after one panic on a pool of two = %v, want success", err)
				}
				if i == 2 && !errors.Is(err, dbm.ErrPoolTimeout) {
					t.Fatalf("a read after two panics on a pool of two = %v, want ErrPoolTimeout", err)
				}
			}
		})
	}
}
