package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Rows opened by a query that was in flight when Close ran, then dropped,
// are still collected and reclaimed (nothing sweeps after Close, so the
// cleanup is attached at once).
type slowQDriver struct {
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}
type slowQConn struct{ d *slowQDriver }
type slowQRows struct{ n int }

func (d *slowQDriver) Open(string) (driver.Conn, error) { return slowQConn{d}, nil }
func (slowQConn) Prepare(string) (driver.Stmt, error)   { return nil, errors.New("no prepare") }
func (slowQConn) Close() error                          { return nil }
func (slowQConn) Begin() (driver.Tx, error)             { return nil, errors.New("no tx") }
func (c slowQConn) QueryContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	c.d.once.Do(func() { close(c.d.entered) })
	<-c.d.gate
	return &slowQRows{}, nil
}
func (*slowQRows) Columns() []string { return []string{"id"} }
func (*slowQRows) Close() error      { return nil }
func (r *slowQRows) Next(dest []driver.Value) error {
	if r.n > 0 {
		return io.EOF
	}
	r.n++
	dest[0] = int64(1)
	return nil
}

type slowQConnector struct{ d *slowQDriver }

func (c slowQConnector) Connect(context.Context) (driver.Conn, error) { return slowQConn(c), nil }
func (c slowQConnector) Driver() driver.Driver                        { return c.d }

//go:noinline
func queryAndDrop(t *testing.T, m *dbm.Manager, done chan<- weak.Pointer[dbm.Rows]) {
	rows, err := m.Query(context.Background(), "SELECT id FROM t")
	if err != nil {
		t.Error(err)
		done <- weak.Pointer[dbm.Rows]{}
		return
	}
	done <- weak.Make(rows)
}

func TestQueryRacingCloseIsStillReclaimed(t *testing.T) {
	d := &slowQDriver{entered: make(chan struct{}), gate: make(chan struct{})}
	db := sql.OpenDB(slowQConnector{d})
	m, err := dbm.Wrap(db, "slowq")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan weak.Pointer[dbm.Rows], 1)
	go queryAndDrop(t, m, done)
	<-d.entered
	closeErr := m.Close() // the statement is in flight: nothing open yet
	close(d.gate)
	wp := <-done
	if wp.Value() == nil && closeErr == nil {
		t.Fatal("the query in flight failed")
	}
	deadline := time.Now().Add(30 * time.Second) // a bound for a broken reclaim
	for wp.Value() != nil && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	for m.Stats().LeaksReclaimed == 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if wp.Value() != nil || m.Stats().LeaksReclaimed != 1 {
		t.Errorf("rows dropped after Close are never collected nor reclaimed (registry holds the young wrapper forever); LeaksReclaimed=%d, InUse=%d",
			m.Stats().LeaksReclaimed, m.Stats().InUse)
	}
}

// A young resource left open at Close is closed by Close: its connection
// is not left for a garbage collection to give back, and dropping the
// wrapper afterwards reclaims nothing more.
func TestYoungResourceLeftOpenAtCloseIsClosed(t *testing.T) {
	m := newMem(t, 3)
	dropAfterClose(t, m)
	if s := m.Stats(); s.InUse != 0 || s.OpenConnections != 0 {
		t.Fatalf("after Close: InUse = %d, OpenConnections = %d; want 0", s.InUse, s.OpenConnections)
	}
	runtime.GC()
	if r := m.Stats().LeaksReclaimed; r != 0 {
		t.Errorf("LeaksReclaimed = %d after Close ended the rows; want 0", r)
	}
}

//go:noinline
func dropAfterClose(t *testing.T, m *dbm.Manager) {
	rows, err := m.Query(context.Background(), "SELECT id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, dbm.ErrLeaked) {
		t.Fatalf("Close with open rows = %v, want ErrLeaked", err)
	}
	_ = rows // dropped here, still open
}

// A transaction alone starts the sweeper: a dropped young Tx is reclaimed
// without any test hook.
func TestBackgroundSweeperReclaimsATx(t *testing.T) {
	m := newSQLite(t)
	dropTx(t, m)
	gcUntil(t, "the dropped transaction was not reclaimed by the background sweeper", func() bool { return m.Stats().LeaksReclaimed == 1 })
}

// TestCloseWhileWorkRuns: Close while other goroutines query, iterate rows
// and run transactions, some of them holding rows and transactions open
// across the Close: nothing panics, nothing deadlocks (Close and every
// worker return within a bound that only a hang reaches), every call after
// Close fails cleanly, and what Close ended is logged once.
func TestCloseWhileWorkRuns(t *testing.T) {
	logs := &logBuffer{}
	m := newMem(t, 50, dbm.WithLogger(logs.logger()))
	m.DB().SetMaxOpenConns(4)
	ctx := context.Background()
	held := make(chan struct{}) // closed once a worker holds rows and a tx open
	var holdOnce sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch (w + i) % 4 {
				case 0: // rows read while Close may close them
					rows, err := m.Query(ctx, "SELECT id FROM users")
					if err != nil {
						continue
					}
					for rows.Next() {
					}
					_ = rows.Err()
					_ = rows.Close()
				case 1: // a transaction with rows, committed
					tx, err := m.BeginTx(ctx, nil)
					if err != nil {
						continue
					}
					if rows, err := tx.Query(ctx, "SELECT id FROM users"); err == nil {
						for rows.Next() {
						}
						_ = rows.Close()
					}
					_ = tx.Commit()
				case 2:
					var ids []int64
					_ = m.ExecuteQuery(ctx, &ids, "SELECT id FROM users")
				case 3: // rows and a tx held open across Close, used afterwards
					if w != 3 {
						continue
					}
					holdOnce.Do(func() {
						rows, err := m.Query(ctx, "SELECT id FROM users")
						if err != nil {
							t.Error(err)
							close(held)
							return
						}
						tx, err := m.BeginTx(ctx, nil)
						if err != nil {
							t.Error(err)
							close(held)
							return
						}
						close(held)
						<-stop
						for rows.Next() {
						}
						_ = rows.Close()
						if err := tx.Commit(); !errors.Is(err, dbm.ErrClosed) {
							t.Errorf("Commit of a tx Close rolled back = %v; want ErrClosed", err)
						}
					})
				}
			}
		})
	}
	<-held
	time.Sleep(20 * time.Millisecond) // let the others run a while
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	var closeErr error
	select {
	case closeErr = <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return within 30s while work ran")
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("workers did not return within 30s of Close")
	}
	if !errors.Is(closeErr, dbm.ErrLeaked) {
		t.Errorf("Close with rows and a tx held open = %v; want ErrLeaked", closeErr)
	}
	if _, err := m.Exec(ctx, "SELECT 1"); !errors.Is(err, dbm.ErrClosed) {
		t.Errorf("Exec after Close = %v; want ErrClosed", err)
	}
	if got := logs.lines("level=WARN", "Close closed rows and transactions", "leaks_close_race_test.go:"); len(got) != 1 {
		t.Errorf("Close's WARN with locations logged %d times; want once\nlog:\n%s", len(got), logs)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Close and the workers returned; want 0", s.InUse)
	}
}
