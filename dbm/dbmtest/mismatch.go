package dbmtest

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// MismatchError is what the code under test gets for a call the mock did
// not expect: a statement or arguments other than the next expectation's,
// a Begin, Commit or Rollback out of turn, or any call after every
// expectation was met (a forgotten ExpectCommit). [NewMock] has already
// failed the test with it, naming the expected and the actual call.
//
// It is not a database failure: the manager classifies it as
// [dbm.ClassUnknown] (it declares that, see [dbm.ClassDeclarer]), so it
// matches no dbm sentinel, is never retried, and a mismatched COMMIT is not
// reported as [dbm.ErrCommitUnknown]. go-sqlmock's own error stays
// reachable with [errors.Unwrap].
type MismatchError struct {
	Call      string // the call the code made: "Query", "Exec", "Prepare", "Begin", "Commit", "Rollback", "Ping"
	Statement string // for Query, Exec and Prepare: the statement as the manager sent it
	Args      []any  // for Query and Exec: the arguments as the driver got them
	Expected  string // what the mock expected instead
	Err       error  // go-sqlmock's error
}

func (e *MismatchError) Error() string {
	return "dbmtest: mock mismatch: got " + e.actual() + "; expected " + e.Expected
}

// Unwrap returns go-sqlmock's error.
func (e *MismatchError) Unwrap() error { return e.Err }

// DBMClass implements [dbm.ClassDeclarer]: a mismatch is no class of
// database failure.
func (e *MismatchError) DBMClass() dbm.Class { return dbm.ClassUnknown }

// actual describes the call the code made.
func (e *MismatchError) actual() string {
	s := e.Call
	if e.Statement != "" {
		s += fmt.Sprintf(" %q", collapse(e.Statement))
	}
	if e.Call == "Query" || e.Call == "Exec" {
		s += fmt.Sprintf(" with args %v", e.Args)
	}
	return s
}

// report is the test failure: expected, actual, and go-sqlmock's text.
func (e *MismatchError) report() string {
	return "dbmtest: the code under test made a call the mock did not expect\n" +
		"\tgot:      " + e.actual() + "\n" +
		"\texpected: " + e.Expected + "\n" +
		"\tsqlmock:  " + e.Err.Error()
}

// plainError is the type of errors.New's and fmt.Errorf's (without %w)
// values, which is how go-sqlmock reports a mismatch; an error a test
// configured with WillReturnError is returned as it was given.
var plainError = reflect.TypeOf(errors.New(""))

// sqlmockCall is go-sqlmock's name for each call in its messages.
var sqlmockCall = map[string]string{"Query": "Query", "Exec": "ExecQuery", "Prepare": "Prepare"}

// mismatch returns err as a *MismatchError when it is go-sqlmock's report
// of an unexpected call, and nil otherwise. go-sqlmock (v1.5) gives no type
// or value to match, so its texts are all there is.
func mismatch(err error, call, statement string, args []driver.NamedValue) *MismatchError {
	if err == nil || reflect.TypeOf(err) != plainError {
		return nil
	}
	msg := err.Error()
	var expected string
	switch {
	case strings.HasPrefix(msg, "call to ") && strings.Contains(msg, ", was not expected, next expectation is: "):
		_, next, _ := strings.Cut(msg, "next expectation is: ")
		expected = strings.Join(strings.Fields(next), " ")
	case strings.HasPrefix(msg, "all expectations were already fulfilled, call to "):
		expected = "no more calls: every expectation was already met"
	case strings.HasPrefix(msg, "call to ") && strings.HasSuffix(msg, " was not expected"),
		strings.HasPrefix(msg, "call to Query '"), strings.HasPrefix(msg, "call to ExecQuery '"), strings.HasPrefix(msg, "call to Prepare statement"):
		expected = "none of the remaining expectations matches this call"
	case strings.HasPrefix(msg, sqlmockCall[call]+": "):
		// The statement differs from the next expectation's: the
		// matcher's text (see equalMatcher) says how.
		_, expected, _ = strings.Cut(msg, ": ")
	case strings.HasPrefix(msg, sqlmockCall[call]+" '") && strings.Contains(msg, "', arguments do not match: "):
		_, why, _ := strings.Cut(msg, "', arguments do not match: ")
		expected = "the same statement with other arguments: " + why
	case strings.HasPrefix(msg, sqlmockCall[call]+" '") && strings.Contains(msg, ", but it was not set for expectation "):
		expected = "an expectation with a result (WillReturnRows or WillReturnResult)"
	default:
		return nil
	}
	e := &MismatchError{Call: call, Statement: statement, Expected: expected, Err: err}
	if call == "Query" || call == "Exec" {
		e.Args = make([]any, len(args))
		for i, a := range args {
			e.Args[i] = a.Value
		}
	}
	return e
}

// reporter fails the test for each mismatch until the test ends.
type reporter struct {
	t     errorer
	mu    sync.Mutex // protects ended, and orders Errorf before it is set
	ended bool       // the test's cleanup has begun: t must not be used
}

// end stops the reports: what database/sql does in the background after
// the test (a rollback for a canceled context) must not call t, which
// panics once the test has completed. The cleanup reports what is left
// open anyway.
func (r *reporter) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
}

// errorer is the part of testing.TB the driver needs.
type errorer interface {
	Errorf(format string, args ...any)
}

// check turns go-sqlmock's mismatch into a *MismatchError and fails the
// test; other errors pass unchanged.
func (r *reporter) check(err error, call, statement string, args []driver.NamedValue) error {
	if e := mismatch(err, call, statement, args); e != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.ended {
			r.t.Errorf("%s", e.report())
		}
		return e
	}
	return err
}

// connector opens connections to one go-sqlmock database, each wrapped so
// that mismatches fail the test.
type connector struct {
	drv driver.Driver
	dsn string
	r   *reporter
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &mockConn{conn: conn, r: c.r}, nil
}

func (c *connector) Driver() driver.Driver { return c.drv }

// The interfaces of go-sqlmock's connection that database/sql uses; the
// connection implements them all.
type sqlmockConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.NamedValueChecker
}

// mockConn is go-sqlmock's connection with every call's mismatch reported.
type mockConn struct {
	conn driver.Conn
	r    *reporter
}

func (c *mockConn) inner() sqlmockConn { return c.conn.(sqlmockConn) }

func (c *mockConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *mockConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.inner().PrepareContext(ctx, query)
	if err != nil {
		return nil, c.r.check(err, "Prepare", query, nil)
	}
	return &mockStmt{Stmt: st, query: query, r: c.r}, nil
}

func (c *mockConn) Close() error { return c.conn.Close() }

func (c *mockConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *mockConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.inner().BeginTx(ctx, opts)
	if err != nil {
		return nil, c.r.check(err, "Begin", "", nil)
	}
	return &mockTx{tx: tx, r: c.r}, nil
}

func (c *mockConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.inner().ExecContext(ctx, query, args)
	return res, c.r.check(err, "Exec", query, args)
}

func (c *mockConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.inner().QueryContext(ctx, query, args)
	return rows, c.r.check(err, "Query", query, args)
}

func (c *mockConn) Ping(ctx context.Context) error {
	return c.r.check(c.inner().Ping(ctx), "Ping", "", nil)
}

func (c *mockConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.inner().CheckNamedValue(nv)
}

// mockTx reports a Commit or Rollback out of turn.
type mockTx struct {
	tx driver.Tx
	r  *reporter
}

func (t *mockTx) Commit() error   { return t.r.check(t.tx.Commit(), "Commit", "", nil) }
func (t *mockTx) Rollback() error { return t.r.check(t.tx.Rollback(), "Rollback", "", nil) }

// mockStmt reports the mismatches of a prepared statement's runs.
type mockStmt struct {
	driver.Stmt
	query string
	r     *reporter
}

func (s *mockStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	return res, s.r.check(err, "Exec", s.query, args)
}

func (s *mockStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	return rows, s.r.check(err, "Query", s.query, args)
}
