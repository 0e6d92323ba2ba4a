package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// breakingConnector makes connections whose first queries, counted over all
// of them, fail with driver.ErrBadConn: a server that ends every connection
// soon after it is made (backends terminated faster than a loaded machine
// runs a statement). The queries after those return one row, 7.
type breakingConnector struct {
	breaks  atomic.Int64 // queries still to fail
	queries atomic.Int64 // queries run
	dials   atomic.Int64
}

func (c *breakingConnector) Connect(context.Context) (driver.Conn, error) {
	c.dials.Add(1)
	return &breakingConn{c: c}, nil
}
func (c *breakingConnector) Driver() driver.Driver { return nil }

type breakingConn struct{ c *breakingConnector }

func (b *breakingConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (b *breakingConn) Close() error                        { return nil }
func (b *breakingConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }
func (b *breakingConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	b.c.queries.Add(1)
	if b.c.breaks.Add(-1) >= 0 {
		return nil, driver.ErrBadConn
	}
	return &oneRow{}, nil
}

type oneRow struct{ done bool }

func (r *oneRow) Columns() []string { return []string{"n"} }
func (r *oneRow) Close() error      { return nil }
func (r *oneRow) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = int64(7)
	return nil
}

// TestBrokenConnectionsReplacedWithinWindow: when the new connections break
// too, not only the pool's stale ones, a read goes on running on new ones,
// pausing as retries do, without using up an attempt, until it gets
// through: here after 60 broken connections, where attempts (2) times the
// pool's stale budget would have given up after a few. When they never stop
// breaking, it gives up once the window (Config.ConnectTimeout) has passed,
// with the connection error. On both paths.
func TestBrokenConnectionsReplacedWithinWindow(t *testing.T) {
	const window = 2 * time.Second
	for _, acquire := range []time.Duration{0, time.Second} {
		t.Run("acquire "+acquire.String(), func(t *testing.T) {
			newManager := func(breaks int64) (*dbm.Manager, *breakingConnector, *retryClock) {
				c := &breakingConnector{}
				c.breaks.Store(breaks)
				m, err := dbm.Wrap(sql.OpenDB(c), "postgres")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = m.Close() })
				clk := &retryClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
				dbm.SetClockForTest(m, clk.now, clk.sleep)
				dbm.SetRetryForTest(m, 2, 10*time.Millisecond, 40*time.Millisecond, acquire)
				dbm.SetReplaceWindowForTest(m, window)
				return m, c, clk
			}

			m, c, clk := newManager(60)
			var n int
			if err := m.Get(context.Background(), &n, "SELECT n"); err != nil || n != 7 {
				t.Fatalf("Get after 60 broken connections = %d, %v; want 7", n, err)
			}
			if q := c.queries.Load(); q != 61 {
				t.Errorf("queries = %d, want 61 (60 broken, then the one that got through)", q)
			}
			for _, d := range clk.pauses() {
				if d < 0 || d > 40*time.Millisecond {
					t.Errorf("pause %v, want within [0, 40ms] (the retry backoff)", d)
				}
			}
			if len(clk.pauses()) == 0 {
				t.Error("no pause between the new connections that broke")
			}

			m, c, clk = newManager(1 << 40)
			start := clk.now()
			err := m.Get(context.Background(), &n, "SELECT n")
			if !errors.Is(err, dbm.ErrConnection) || !errors.Is(err, driver.ErrBadConn) {
				t.Fatalf("Get with connections that always break: %v, want ErrConnection wrapping driver.ErrBadConn", err)
			}
			if took := clk.now().Sub(start); took > window+2*40*time.Millisecond {
				t.Errorf("gave up after %v, want within the window %v (and one retry pause)", took, window)
			}
			if took := clk.now().Sub(start); took < window/2 {
				t.Errorf("gave up after %v, want close to the window %v", took, window)
			}
			t.Logf("queries %d, dials %d, pauses %d", c.queries.Load(), c.dials.Load(), len(clk.pauses()))
		})
	}
}
