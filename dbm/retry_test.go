package dbm_test

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// retryClock stands still unless told; sleeping records the pause and moves
// the clock forward by it. No test here sleeps.
type retryClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
	onWake func(n int) // called after the n-th pause, from the sleeping goroutine
}

func (c *retryClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *retryClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	n, wake := len(c.sleeps), c.onWake
	c.mu.Unlock()
	if wake != nil {
		wake(n)
	}
	return ctx.Err()
}

func (c *retryClock) pauses() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// newRetryMock is newMock with a fake clock and the given attempt limit
// (initial backoff 10ms, cap 40ms).
func newRetryMock(t *testing.T, driverName string, attempts int, opts ...dbm.Option) (*dbm.Manager, sqlmock.Sqlmock, *retryClock) {
	t.Helper()
	m, mock := newMock(t, driverName)
	clk := &retryClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dbm.SetClockForTest(m, clk.now, clk.sleep)
	dbm.SetRetryForTest(m, attempts, 10*time.Millisecond, 40*time.Millisecond, 0)
	return m, mock, clk
}

// transient errors, each of a class that reads retry on.
var transientErrors = []struct {
	name  string
	err   error
	class dbm.Class
}{
	{"connection lost", io.ErrUnexpectedEOF, dbm.ClassConnection},
	{"admin shutdown 57P01", &stateErr{"57P01"}, dbm.ClassConnection},
	{"too many connections 53300", &stateErr{"53300"}, dbm.ClassTooManyConnections},
	{"serialization 40001", &stateErr{"40001"}, dbm.ClassSerialization},
	{"deadlock 40P01", &stateErr{"40P01"}, dbm.ClassDeadlock},
	{"lock timeout 55P03", &stateErr{"55P03"}, dbm.ClassLockTimeout},
}

func TestReadsRetryTransientErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range transientErrors {
		t.Run(tc.name, func(t *testing.T) {
			m, mock, clk := newRetryMock(t, "postgres", 3)
			mock.ExpectQuery("SELECT n FROM t").WillReturnError(tc.err)
			mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(7))
			var n int
			if err := m.Get(ctx, &n, "SELECT n FROM t"); err != nil || n != 7 {
				t.Fatalf("Get = %d, %v; want 7 after one retry", n, err)
			}
			if p := clk.pauses(); len(p) != 1 || p[0] < 0 || p[0] > 10*time.Millisecond {
				t.Errorf("pauses = %v, want one in [0, 10ms]", p)
			}
			s := m.Stats()
			if s.Retries != 1 || s.ErrorsByClass[tc.class.String()] != 1 {
				t.Errorf("stats: retries %d, errors %v", s.Retries, s.ErrorsByClass)
			}
		})
	}
}

func TestEveryReadCallRetries(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(m *dbm.Manager) error{
		"ExecuteQuery": func(m *dbm.Manager) error { var v []int; return m.ExecuteQuery(ctx, &v, "SELECT n FROM t") },
		"Select":       func(m *dbm.Manager) error { _, err := dbm.Select[int](ctx, m, "SELECT n FROM t"); return err },
		"One":          func(m *dbm.Manager) error { _, err := dbm.One[int](ctx, m, "SELECT n FROM t"); return err },
		"Query": func(m *dbm.Manager) error {
			rows, err := m.Query(ctx, "SELECT n FROM t")
			if err != nil {
				return err
			}
			return rows.Close()
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			m, mock, _ := newRetryMock(t, "postgres", 2)
			mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{"40P01"})
			mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
			if err := call(m); err != nil {
				t.Fatal(err)
			}
			if r := m.Stats().Retries; r != 1 {
				t.Errorf("Retries = %d, want 1", r)
			}
		})
	}
}

func TestReadsDoNotRetryPermanentErrors(t *testing.T) {
	for _, code := range []string{"42601", "42P01", "23505", "22012", "42501", "57014"} {
		t.Run(code, func(t *testing.T) {
			m, mock, clk := newRetryMock(t, "postgres", 5)
			mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{code})
			var n int
			if err := m.Get(context.Background(), &n, "SELECT n FROM t"); err == nil {
				t.Fatal("no error")
			}
			if len(clk.pauses()) != 0 || m.Stats().Retries != 0 {
				t.Errorf("retried a permanent error: pauses %v", clk.pauses())
			}
		})
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	var logs bytes.Buffer
	db, mock2, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	lm, err := dbm.Wrap(db, "postgres", dbm.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	clk := &retryClock{}
	dbm.SetClockForTest(lm, clk.now, clk.sleep)
	dbm.SetRetryForTest(lm, 4, 10*time.Millisecond, 25*time.Millisecond, 0)
	for range 4 {
		mock2.ExpectQuery("SELECT n FROM t WHERE secret = $1").WithArgs("hunter2-arg").WillReturnError(&stateErr{"40001"})
	}
	var n int
	err = lm.Get(context.Background(), &n, "SELECT n FROM t WHERE secret = ?", "hunter2-arg")
	if !errors.Is(err, dbm.ErrSerialization) {
		t.Fatalf("err = %v, want the last ErrSerialization", err)
	}
	if err := mock2.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
	p := clk.pauses()
	caps := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond}
	if len(p) != len(caps) {
		t.Fatalf("pauses = %v, want %d", p, len(caps))
	}
	for i := range p {
		if p[i] < 0 || p[i] > caps[i] {
			t.Errorf("pause %d = %v, want within [0, %v] (doubling, capped)", i+1, p[i], caps[i])
		}
	}
	if r := lm.Stats().Retries; r != 3 {
		t.Errorf("Retries = %d, want 3", r)
	}
	out := logs.String()
	if strings.Count(out, "level=DEBUG msg=\"dbm: retrying\"") != 3 || !strings.Contains(out, "level=WARN msg=\"dbm: giving up\"") {
		t.Errorf("want 3 DEBUG retry records and one WARN, got:\n%s", out)
	}
	if strings.Contains(out, "hunter2-arg") {
		t.Errorf("an argument value reached the log:\n%s", out)
	}
}

func TestRetryNeverSleepsPastTheDeadline(t *testing.T) {
	m, mock, clk := newRetryMock(t, "postgres", 5)
	dbm.SetRetryForTest(m, 5, time.Second, time.Second, 0)
	mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{"40001"})
	// The fake clock stands 1ms before the deadline, so any
	// pause but a zero one would end past it. Full jitter can draw zero, so
	// allow the zero pauses and their attempts.
	dl := time.Now().Add(time.Hour) // the real context must not expire
	clk.mu.Lock()
	clk.t = dl.Add(-time.Millisecond)
	clk.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	var n int
	err := m.Get(ctx, &n, "SELECT n FROM t")
	if !errors.Is(err, dbm.ErrSerialization) {
		t.Fatalf("err = %v, want the last attempt's ErrSerialization, not a timeout", err)
	}
	for _, d := range clk.pauses() {
		if d >= time.Millisecond {
			t.Errorf("slept %v past the deadline", d)
		}
	}
}

func TestWritesRetryOnlyWhenNotExecuted(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		err         error
		retried     bool
		wantUnknown bool
	}{
		{"serialization rolled back", &stateErr{"40001"}, true, false},
		{"deadlock rolled back", &stateErr{"40P01"}, true, false},
		{"lock not available", &stateErr{"55P03"}, true, false},
		{"too many connections", &stateErr{"53300"}, true, false},
		{"cannot connect now", &stateErr{"57P03"}, true, false},
		{"reply lost", io.ErrUnexpectedEOF, false, true},
		{"terminated", &stateErr{"57P01"}, false, true},
		{"unique violation", &stateErr{"23505"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, mock, _ := newRetryMock(t, "postgres", 3)
			mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnError(tc.err)
			if tc.retried {
				mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnResult(sqlmock.NewResult(0, 1))
			}
			_, err := m.Exec(ctx, "UPDATE t SET n = n + 1")
			if tc.retried != (err == nil) {
				t.Fatalf("err = %v; retried should be %v", err, tc.retried)
			}
			if got := errors.Is(err, dbm.ErrOutcomeUnknown); got != tc.wantUnknown {
				t.Errorf("ErrOutcomeUnknown = %v, want %v (err %v)", got, tc.wantUnknown, err)
			}
			if tc.wantUnknown && (!errors.Is(err, dbm.ErrConnection) || !strings.Contains(err.Error(), "outcome unknown")) {
				t.Errorf("err = %v, want ErrConnection saying the outcome is unknown", err)
			}
		})
	}
}

func TestIdempotentWritesRetryLikeReads(t *testing.T) {
	m, mock, _ := newRetryMock(t, "postgres", 3)
	mock.ExpectExec("UPDATE t SET n = 5").WillReturnError(io.ErrUnexpectedEOF)
	mock.ExpectExec("UPDATE t SET n = 5").WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(dbm.Idempotent(context.Background()), "UPDATE t SET n = 5"); err != nil {
		t.Fatal(err)
	}
	if r := m.Stats().Retries; r != 1 {
		t.Errorf("Retries = %d, want 1", r)
	}
}

func TestRowReturningWritesAreWrites(t *testing.T) {
	m, mock, _ := newRetryMock(t, "postgres", 3)
	mock.ExpectQuery("INSERT INTO t (n) VALUES (1) RETURNING id").WillReturnError(io.ErrUnexpectedEOF)
	var id int64
	err := m.Get(context.Background(), &id, "INSERT INTO t (n) VALUES (1) RETURNING id")
	if !errors.Is(err, dbm.ErrOutcomeUnknown) || m.Stats().Retries != 0 {
		t.Errorf("err = %v, retries %d; want outcome unknown, not retried", err, m.Stats().Retries)
	}
}

func TestNoStatementRetryInsideTx(t *testing.T) {
	m, mock, _ := newRetryMock(t, "postgres", 3)
	mock.ExpectBegin()
	mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{"40001"})
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(&stateErr{"40001"})
	mock.ExpectRollback()
	tx, err := m.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.Get(context.Background(), &n, "SELECT n FROM t"); !errors.Is(err, dbm.ErrSerialization) {
		t.Errorf("Get = %v", err)
	}
	if _, err := tx.Exec(context.Background(), "UPDATE t SET n = 1"); !errors.Is(err, dbm.ErrSerialization) {
		t.Errorf("Exec = %v", err)
	}
	_ = tx.Rollback()
	if r := m.Stats().Retries; r != 0 {
		t.Errorf("Retries = %d inside a transaction", r)
	}
}

func TestWithTxReruns(t *testing.T) {
	ctx := context.Background()
	t.Run("statement aborted", func(t *testing.T) {
		for _, cause := range []error{&stateErr{"40001"}, &stateErr{"40P01"}, io.ErrUnexpectedEOF} {
			m, mock, clk := newRetryMock(t, "postgres", 3)
			mock.ExpectBegin()
			mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnError(cause)
			mock.ExpectRollback()
			mock.ExpectBegin()
			mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnResult(sqlmock.NewResult(0, 1))
			mock.ExpectCommit()
			runs := 0
			err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
				runs++
				_, err := tx.Exec(ctx, "UPDATE t SET n = n + 1")
				return err
			})
			if err != nil || runs != 2 || len(clk.pauses()) != 1 {
				t.Errorf("%v: err %v, runs %d, pauses %v; want success on the second run", cause, err, runs, clk.pauses())
			}
			if s := m.Stats(); s.Retries != 1 || s.Commits != 1 {
				t.Errorf("stats %+v", s)
			}
		}
	})
	t.Run("serialization at commit", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(&stateErr{"40001"})
		mock.ExpectBegin()
		mock.ExpectCommit()
		runs := 0
		if err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { runs++; return nil }); err != nil || runs != 2 {
			t.Errorf("err %v, runs %d", err, runs)
		}
	})
	t.Run("commit reply lost", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectBegin()
		mock.ExpectCommit().WillReturnError(io.ErrUnexpectedEOF)
		runs := 0
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { runs++; return nil })
		if !errors.Is(err, dbm.ErrCommitUnknown) || !errors.Is(err, dbm.ErrOutcomeUnknown) || runs != 1 {
			t.Errorf("err %v, runs %d; want ErrCommitUnknown after one run", err, runs)
		}
	})
	t.Run("fn's own error", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectBegin()
		mock.ExpectRollback().WillReturnError(io.ErrUnexpectedEOF) // a rollback failing on a dead connection
		boom := errors.New("boom")
		runs := 0
		err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { runs++; return boom })
		if !errors.Is(err, boom) || runs != 1 {
			t.Errorf("err %v, runs %d; fn's own error must not rerun", err, runs)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 2)
		for range 2 {
			mock.ExpectBegin()
			mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(&stateErr{"40001"})
			mock.ExpectRollback()
		}
		runs := 0
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			runs++
			_, err := tx.Exec(ctx, "UPDATE t SET n = 1")
			return err
		})
		if !errors.Is(err, dbm.ErrSerialization) || runs != 2 {
			t.Errorf("err %v, runs %d", err, runs)
		}
	})
}

func TestPoolTimeout(t *testing.T) {
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	m, err := dbm.Wrap(db, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dbm.SetRetryForTest(m, 3, time.Millisecond, time.Millisecond, 20*time.Millisecond)
	mock.ExpectBegin()
	mock.ExpectRollback()
	tx, err := m.BeginTx(context.Background(), nil) // holds the only connection
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	err = m.Get(context.Background(), &n, "SELECT 1")
	if !errors.Is(err, dbm.ErrPoolTimeout) || errors.Is(err, dbm.ErrTimeout) {
		t.Fatalf("err = %v, want ErrPoolTimeout and not ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "in use 1, idle 0, max open 1") {
		t.Errorf("message lacks the pool counts: %v", err)
	}
	_, err = m.Exec(context.Background(), "UPDATE t SET n = 1")
	if !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Errorf("Exec: %v, want ErrPoolTimeout", err)
	}
	// The caller's own deadline is a timeout, not a pool timeout.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if err := m.Get(ctx, &n, "SELECT 1"); errors.Is(err, dbm.ErrPoolTimeout) {
		t.Errorf("caller's deadline reported as pool timeout: %v", err)
	}
}

// pgxLike imitates pgconn's errors: SafeToRetry says nothing was sent.
type pgxLike struct {
	safe    bool
	timeout bool
}

func (e *pgxLike) Error() string     { return "pgx-like failure" }
func (e *pgxLike) SafeToRetry() bool { return e.safe }
func (e *pgxLike) Timeout() bool     { return e.timeout }

func TestPgxBehaviourErrors(t *testing.T) {
	if c := dbm.Classify(&pgxLike{safe: true}); c != dbm.ClassConnection {
		t.Errorf("SafeToRetry error: class %v, want connection", c)
	}
	if c := dbm.Classify(&pgxLike{timeout: true}); c != dbm.ClassTimeout {
		t.Errorf("Timeout error: class %v, want timeout", c)
	}
	if c := dbm.Classify(&pgxLike{}); c != dbm.ClassUnknown {
		t.Errorf("neither: class %v, want unknown", c)
	}
	// A write that pgx reports as never sent is retried; one that may have
	// been sent is not.
	m, mock, _ := newRetryMock(t, "pgx", 3)
	mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnError(&pgxLike{safe: true})
	mock.ExpectExec("UPDATE t SET n = n + 1").WillReturnResult(sqlmock.NewResult(0, 1))
	if _, err := m.Exec(context.Background(), "UPDATE t SET n = n + 1"); err != nil {
		t.Errorf("SafeToRetry write not retried: %v", err)
	}
}

func TestGoConnectionErrorsClassified(t *testing.T) {
	for _, err := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, driver.ErrBadConn,
		&net.OpError{Op: "read", Err: syscall.ECONNRESET}} {
		if c := dbm.Classify(err); c != dbm.ClassConnection || !dbm.IsRetryable(err) {
			t.Errorf("%v: class %v, want connection", err, c)
		}
	}
	if c := dbm.Classify(&net.OpError{Op: "dial", Err: timeoutErr{}}); c != dbm.ClassTimeout {
		t.Errorf("net timeout: class %v, want timeout", c)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestWithTxNeverRerunsAfterOutcomeUnknown: a write fn makes outside the
// transaction (an audit row on the manager) loses its reply. Rerunning fn
// would run that write a second time, so WithTx must not.
func TestWithTxNeverRerunsAfterOutcomeUnknown(t *testing.T) {
	m, mock, _ := newRetryMock(t, "postgres", 3)
	mock.ExpectBegin()
	mock.ExpectExec("INSERT INTO audit VALUES (1)").WillReturnError(io.ErrUnexpectedEOF)
	mock.ExpectRollback()
	runs := 0
	err := m.WithTx(context.Background(), nil, func(ctx context.Context, tx *dbm.Tx) error {
		runs++
		_, err := m.Exec(ctx, "INSERT INTO audit VALUES (1)")
		return fmt.Errorf("audit: %w", err)
	})
	if !errors.Is(err, dbm.ErrOutcomeUnknown) || runs != 1 {
		t.Errorf("err %v, runs %d; want ErrOutcomeUnknown after one run (the write ran once)", err, runs)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// TestWithTxNeverRerunsOnForeignErrors: only the manager's own errors of
// the rerunnable classes rerun fn; a network error from something else fn
// calls (an HTTP request) says nothing about the transaction.
func TestWithTxNeverRerunsOnForeignErrors(t *testing.T) {
	for _, cause := range []error{
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by payment gateway")},
		io.ErrUnexpectedEOF,
		&stateErr{"40001"}, // a driver error fn got without the manager
	} {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectBegin()
		mock.ExpectRollback()
		runs := 0
		err := m.WithTx(context.Background(), nil, func(context.Context, *dbm.Tx) error { runs++; return cause })
		if !errors.Is(err, cause) || runs != 1 {
			t.Errorf("%T: err %v, runs %d; want fn's error after one run", cause, err, runs)
		}
	}
}

// TestNotIdempotentReadIsAWrite: a SELECT of a function with side effects,
// marked NotIdempotent, is not run again after its reply was lost, and
// reports that its outcome is unknown; it is still retried when the server
// says it rolled it back.
func TestNotIdempotentReadIsAWrite(t *testing.T) {
	ctx := dbm.NotIdempotent(context.Background())
	t.Run("reply lost", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectQuery("SELECT send_invoice(42)").WillReturnError(io.ErrUnexpectedEOF)
		var id int
		err := m.Get(ctx, &id, "SELECT send_invoice(42)")
		if !errors.Is(err, dbm.ErrOutcomeUnknown) || m.Stats().Retries != 0 {
			t.Errorf("err = %v, retries %d; want outcome unknown, not retried", err, m.Stats().Retries)
		}
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Error(err)
		}
	})
	t.Run("rolled back", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectQuery("SELECT send_invoice(42)").WillReturnError(&stateErr{"40001"})
		mock.ExpectQuery("SELECT send_invoice(42)").WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(7))
		var id int
		if err := m.Get(ctx, &id, "SELECT send_invoice(42)"); err != nil || id != 7 {
			t.Errorf("err = %v, id %d; want the retry's row", err, id)
		}
	})
	t.Run("Idempotent inside wins", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectQuery("SELECT send_invoice(42)").WillReturnError(io.ErrUnexpectedEOF)
		mock.ExpectQuery("SELECT send_invoice(42)").WillReturnRows(sqlmock.NewRows([]string{"id"}).AddRow(7))
		var id int
		if err := m.Get(dbm.Idempotent(ctx), &id, "SELECT send_invoice(42)"); err != nil || id != 7 {
			t.Errorf("err = %v, id %d; want a retry: the inner Idempotent applies", err, id)
		}
	})
}

// TestRetryPausesAreJittered: each pause is drawn at random from [0, cap],
// where cap starts at the initial backoff and doubles up to the maximum.
func TestRetryPausesAreJittered(t *testing.T) {
	fail := func(t *testing.T, attempts int) (*dbm.Manager, sqlmock.Sqlmock, *retryClock) {
		m, mock, clk := newRetryMock(t, "postgres", attempts) // caps 10ms, 20ms, 40ms, 40ms, ...
		for range attempts {
			mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{"40001"})
		}
		return m, mock, clk
	}
	caps := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	t.Run("the draw decides", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			draw func(n time.Duration) time.Duration
			want func(cap time.Duration) time.Duration
		}{
			{"highest draw", func(n time.Duration) time.Duration { return n - 1 }, func(c time.Duration) time.Duration { return c }},
			{"lowest draw", func(time.Duration) time.Duration { return 0 }, func(time.Duration) time.Duration { return 0 }},
			{"middle draw", func(n time.Duration) time.Duration { return n / 2 }, func(c time.Duration) time.Duration { return (c + 1) / 2 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, _, clk := fail(t, len(caps)+1)
				var drawn []time.Duration
				dbm.SetJitterForTest(m, func(n time.Duration) time.Duration { drawn = append(drawn, n); return tc.draw(n) })
				var n int
				_ = m.Get(context.Background(), &n, "SELECT n FROM t")
				got := clk.pauses()
				if len(got) != len(caps) || len(drawn) != len(caps) {
					t.Fatalf("pauses %v, draws from %v; want %d of each", got, drawn, len(caps))
				}
				for i, c := range caps {
					if drawn[i] != c+1 || got[i] != tc.want(c) {
						t.Errorf("pause %d: drawn from [0, %v), slept %v; want [0, %v] and %v", i+1, drawn[i], got[i], c+1, tc.want(c))
					}
				}
			})
		}
	})
	t.Run("real draws vary within the cap", func(t *testing.T) {
		const attempts = 40
		m, _, clk := fail(t, attempts)
		var n int
		_ = m.Get(context.Background(), &n, "SELECT n FROM t")
		got := clk.pauses()
		if len(got) != attempts-1 {
			t.Fatalf("%d pauses, want %d", len(got), attempts-1)
		}
		distinct := map[time.Duration]bool{}
		for i, d := range got {
			c := 40 * time.Millisecond
			if i < len(caps) {
				c = caps[i]
			}
			if d < 0 || d > c {
				t.Errorf("pause %d = %v, outside [0, %v]", i+1, d, c)
			}
			if i >= 2 { // the pauses capped at 40ms
				distinct[d] = true
			}
		}
		// 37 uniform draws from 40 million values: all equal has a
		// probability below 10^-260.
		if len(distinct) < 2 {
			t.Errorf("pauses %v are all the same: no jitter", got)
		}
	})
}

// fn commits the transaction itself, then a later read on the manager fails
// with a rerunnable class. WithTx reruns fn: the committed INSERT runs twice.
func TestWithTxNeverRerunsAfterFnCommitted(t *testing.T) {
	ctx := context.Background()
	m, mock, _ := newRetryMock(t, "postgres", 2)
	mock.ExpectBegin()
	mock.ExpectExec("INSERT INTO orders VALUES (1)").WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	mock.ExpectQuery("SELECT n FROM counters").WillReturnError(&stateErr{"40001"})
	mock.ExpectQuery("SELECT n FROM counters").WillReturnError(&stateErr{"40001"})
	runs := 0
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		runs++
		if _, err := tx.Exec(ctx, "INSERT INTO orders VALUES (1)"); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		var n int
		return m.Get(ctx, &n, "SELECT n FROM counters")
	})
	// A rerun would have begun a second transaction (which sqlmock refuses,
	// so its error would come back instead of fn's).
	if runs != 1 || !errors.Is(err, dbm.ErrSerialization) {
		t.Errorf("fn ran %d times, WithTx = %v: want fn's serialization error and no rerun of a transaction fn had already committed", runs, err)
	}
}

// fn returns errors.Join(txErr, auditErr) where auditErr (a write on the
// manager) matches ErrOutcomeUnknown. The doc says such an error never
// reruns; txRerunnable only looks at errs[0].
func TestWithTxNeverRerunsJoinedOutcomeUnknown(t *testing.T) {
	m, mock, _ := newRetryMock(t, "postgres", 2)
	mock.ExpectBegin()
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(&stateErr{"40001"})
	mock.ExpectExec("INSERT INTO audit VALUES (1)").WillReturnError(io.ErrUnexpectedEOF)
	mock.ExpectRollback()
	runs := 0
	err := m.WithTx(context.Background(), nil, func(ctx context.Context, tx *dbm.Tx) error {
		runs++
		_, err := tx.Exec(ctx, "UPDATE t SET n = 1")
		if err != nil {
			_, aerr := m.Exec(ctx, "INSERT INTO audit VALUES (1)")
			return errors.Join(err, aerr)
		}
		return nil
	})
	if !errors.Is(err, dbm.ErrOutcomeUnknown) {
		t.Fatalf("err %v does not match ErrOutcomeUnknown", err)
	}
	if runs != 1 {
		t.Errorf("fn ran %d times although its error matches ErrOutcomeUnknown: the audit INSERT whose outcome is unknown was sent twice", runs)
	}
}

// pgxTimeout is pgconn's timeout error: "timeout: " and the cause, with
// pgx's judgement whether anything was sent.
type pgxTimeout struct {
	cause string
	safe  bool
}

func (e *pgxTimeout) Error() string     { return "timeout: " + e.cause }
func (e *pgxTimeout) Timeout() bool     { return true }
func (e *pgxTimeout) SafeToRetry() bool { return e.safe }

// TestPgxTimeoutOutcome: a write that pgx says timed out before it was
// sent (its context had ended: SafeToRetry) is ErrTimeout and not
// ErrOutcomeUnknown; one that timed out after it was sent is both. Neither
// message says "timeout" twice.
func TestPgxTimeoutOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *pgxTimeout
		unknown bool
		want    string
	}{
		{"before it was sent", &pgxTimeout{cause: "context already done: context deadline exceeded", safe: true}, false,
			"dbm: exec: timeout: context already done: context deadline exceeded [statement: UPDATE t SET n = 1]"},
		{"after it was sent", &pgxTimeout{cause: "context deadline exceeded"}, true,
			"dbm: exec: timeout: outcome unknown, the statement may have taken effect: context deadline exceeded [statement: UPDATE t SET n = 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, mock, _ := newRetryMock(t, "pgx", 1)
			mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(tc.err)
			_, err := m.Exec(context.Background(), "UPDATE t SET n = 1")
			if !errors.Is(err, dbm.ErrTimeout) || errors.Is(err, dbm.ErrOutcomeUnknown) != tc.unknown {
				t.Errorf("err = %v; want ErrTimeout, ErrOutcomeUnknown %v", err, tc.unknown)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("message %q\nwant    %q", err, tc.want)
			}
			var pe *pgxTimeout
			if !errors.As(err, &pe) {
				t.Errorf("errors.As does not reach pgx's error in %v", err)
			}
		})
	}
}

// cachedPlanErr is PostgreSQL's refusal to run a statement prepared before
// DDL changed the type of a column it returns.
type cachedPlanErr struct{}

func (cachedPlanErr) Error() string {
	return "ERROR: cached plan must not change result type (SQLSTATE 0A000)"
}
func (cachedPlanErr) SQLState() string { return "0A000" }

// The first attempt of a read outside a transaction runs before the retry
// loop, which takes over only when it fails (see Manager.retryAfter): a
// stale cached plan still runs the statement again at once, with retries
// off too, and a deadlock still pauses and retries, for every read call,
// with and without the manager's queue in the way.
func TestFirstAttemptFailureGoesOnInTheRetryLoop(t *testing.T) {
	ctx := context.Background()
	const q = "SELECT n FROM t"
	calls := map[string]func(m *dbm.Manager) (int, error){
		"ExecuteQuery": func(m *dbm.Manager) (int, error) {
			var v []int
			err := m.ExecuteQuery(ctx, &v, q)
			if len(v) != 1 {
				return len(v), err
			}
			return v[0], err
		},
		"Get":    func(m *dbm.Manager) (n int, err error) { err = m.Get(ctx, &n, q); return n, err },
		"Select": func(m *dbm.Manager) (int, error) { v, err := dbm.Select[int](ctx, m, q); return len(v) * 7, err },
	}
	for _, pool := range []string{"unbounded", "queue"} {
		for _, tc := range []struct {
			name     string
			err      error
			attempts int
			pauses   int
		}{
			{"stale cached plan, retries off", cachedPlanErr{}, 1, 0},
			{"deadlock", &stateErr{"40P01"}, 2, 1},
		} {
			for name, call := range calls {
				t.Run(pool+"/"+tc.name+"/"+name, func(t *testing.T) {
					db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
					if err != nil {
						t.Fatal(err)
					}
					if pool == "queue" {
						db.SetMaxOpenConns(2) // Wrap makes the manager's queue for a bounded pool
					}
					m, err := dbm.Wrap(db, "postgres")
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					clk := &retryClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
					dbm.SetClockForTest(m, clk.now, clk.sleep)
					dbm.SetRetryForTest(m, tc.attempts, 10*time.Millisecond, 40*time.Millisecond, 0)
					mock.ExpectQuery(q).WillReturnError(tc.err)
					mock.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(7))
					if n, err := call(m); err != nil || n != 7 {
						t.Fatalf("got %d, %v; want 7 after one more attempt", n, err)
					}
					if r := m.Stats().Retries; r != 1 {
						t.Errorf("Retries = %d, want 1", r)
					}
					if p := clk.pauses(); len(p) != tc.pauses {
						t.Errorf("pauses = %v, want %d", p, tc.pauses)
					}
					if err := mock.ExpectationsWereMet(); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
}
