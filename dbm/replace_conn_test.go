package dbm_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestBrokenConnectionsReplacedAtOnce: a read whose connection turns out
// broken runs again at once on another connection, without a pause and
// without using up an attempt, on both paths; a refused dial (the server is
// down) is a plain retry with a pause; a write whose connection broke is not
// run again. TestPostgresStaleIdleConnections shows the same against a real
// server, driver.ErrBadConn included.
func TestBrokenConnectionsReplacedAtOnce(t *testing.T) {
	ctx := context.Background()
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, acquire := range []time.Duration{0, time.Second} {
		for _, tc := range []struct {
			name   string
			err    error
			pauses int
		}{
			// driver.ErrBadConn is not here: database/sql replaces the
			// connection itself on the pool path, and sqlmock cannot open
			// a connection again after database/sql discarded one (the
			// Postgres test covers it).
			{"reset", reset, 0},
			{"refused dial", refused, 1},
		} {
			t.Run(tc.name+", acquire "+acquire.String(), func(t *testing.T) {
				m, mock, clk := newRetryMock(t, "postgres", 2)
				dbm.SetRetryForTest(m, 2, 10*time.Millisecond, 40*time.Millisecond, acquire)
				mock.ExpectQuery("SELECT n FROM t").WillReturnError(tc.err)
				mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(7))
				var n int
				if err := m.Get(ctx, &n, "SELECT n FROM t"); err != nil || n != 7 {
					t.Fatalf("Get = %d, %v; want 7", n, err)
				}
				if p := clk.pauses(); len(p) != tc.pauses {
					t.Errorf("pauses = %v, want %d", p, tc.pauses)
				}
				if r := m.Stats().Retries; r != 1 {
					t.Errorf("Retries = %d, want 1", r)
				}
			})
		}
	}

	t.Run("a write is not run again", func(t *testing.T) {
		m, mock, _ := newRetryMock(t, "postgres", 3)
		mock.ExpectExec("INSERT INTO t (n) VALUES (1)").WillReturnError(reset)
		_, err := m.Exec(ctx, "INSERT INTO t (n) VALUES (1)")
		if !errors.Is(err, dbm.ErrOutcomeUnknown) {
			t.Errorf("err = %v, want ErrOutcomeUnknown", err)
		}
		if r := m.Stats().Retries; r != 0 {
			t.Errorf("Retries = %d, want 0", r)
		}
	})
}
