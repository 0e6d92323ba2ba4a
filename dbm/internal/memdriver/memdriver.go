// Package memdriver is a database/sql driver that serves a fixed, generated
// result set from memory. Benchmarks use it to measure the cost of scanning
// and of the manager itself, with no server or SQL engine in the way.
//
// The DSN is the number of rows every query returns. Each row has eight
// columns: id int64, name string, email string, active bool, created_at
// time.Time, score float64, nick (string, NULL on odd rows) and age int64.
// With a DSN of the form "stream:N" the N rows are generated as they are
// read instead of being kept in memory, for tests that stream millions of
// rows and measure the reader's memory.
package memdriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Name is the driver name registered with database/sql.
const Name = "dbm-mem"

func init() { sql.Register(Name, Driver{}) }

// Columns are the column names of every result.
var Columns = []string{"id", "name", "email", "active", "created_at", "score", "nick", "age"}

// Driver implements driver.Driver.
type Driver struct{}

var (
	mu     sync.Mutex
	tables = map[int][][]driver.Value{}
)

// rowsFor returns (and caches) n generated rows.
func rowsFor(n int) [][]driver.Value {
	mu.Lock()
	defer mu.Unlock()
	if r, ok := tables[n]; ok {
		return r
	}
	r := make([][]driver.Value, n)
	for i := range r {
		r[i] = make([]driver.Value, len(Columns))
		fillRow(r[i], i)
	}
	tables[n] = r
	return r
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fillRow writes row i's values into dest.
func fillRow(dest []driver.Value, i int) {
	var nick driver.Value
	if i%2 == 0 {
		nick = "nick" + strconv.Itoa(i)
	}
	dest[0], dest[1], dest[2], dest[3] = int64(i), "user"+strconv.Itoa(i), "user"+strconv.Itoa(i)+"@example.com", i%3 != 0
	dest[4], dest[5], dest[6], dest[7] = base.Add(time.Duration(i)*time.Second), float64(i)*1.5, nick, int64(20+i%50)
}

// Open returns a connection whose queries return as many rows as the DSN says.
func (Driver) Open(dsn string) (driver.Conn, error) {
	if rest, ok := strings.CutPrefix(dsn, "stream:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("memdriver: stream DSN must be stream:<row count>, got %q", dsn)
		}
		return &conn{stream: n}, nil
	}
	n, err := strconv.Atoi(dsn)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("memdriver: DSN must be a row count, got %q", dsn)
	}
	return &conn{rows: rowsFor(n)}, nil
}

type conn struct {
	rows   [][]driver.Value
	stream int // rows generated on the fly, when rows is nil
}

func (c *conn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (c *conn) Close() error                        { return nil }
func (c *conn) Begin() (driver.Tx, error)           { return tx{}, nil }

// QueryContext implements driver.QueryerContext: every query returns the
// generated rows; a query ending in "LIMIT 1" returns just the first. (The
// marker is SQL so that the manager sees these queries as reads.)
func (c *conn) QueryContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	one := strings.HasSuffix(query, "LIMIT 1")
	if c.rows == nil {
		n := c.stream
		if one {
			n = min(n, 1)
		}
		return &rows{stream: n}, nil
	}
	data := c.rows
	if one && len(data) > 0 {
		data = data[:1]
	}
	return &rows{data: data, stream: -1}, nil
}

// ExecContext implements driver.ExecerContext.
func (c *conn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

// CheckNamedValue accepts every argument as is.
func (c *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

type tx struct{}

func (tx) Commit() error   { return nil }
func (tx) Rollback() error { return nil }

type rows struct {
	data   [][]driver.Value
	stream int // rows to generate, or -1 to serve data
	i      int
}

func (r *rows) Columns() []string { return Columns }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if r.stream >= 0 {
		if r.i >= r.stream {
			return io.EOF
		}
		fillRow(dest, r.i)
		r.i++
		return nil
	}
	if r.i >= len(r.data) {
		return io.EOF
	}
	copy(dest, r.data[r.i])
	r.i++
	return nil
}
