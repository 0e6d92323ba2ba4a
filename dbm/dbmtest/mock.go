package dbmtest

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jmoiron/sqlx"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// Option configures [NewMock].
type Option interface{ apply(*options) }

type options struct {
	driver  string
	regexp  bool
	manager []dbm.Option
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithDriver sets the driver name the manager believes it talks to, which
// decides the placeholder style (see [dbm.Wrap]) and how driver errors are
// classified. The default is [dbm.DriverPostgres], as for [dbm.New].
func WithDriver(name string) Option {
	return optionFunc(func(o *options) { o.driver = name })
}

// WithRegexpMatching makes expectations regular expressions, as
// go-sqlmock's default [sqlmock.QueryMatcherRegexp] does, instead of the
// white-space-insensitive equality that [NewMock] uses by default.
func WithRegexpMatching() Option {
	return optionFunc(func(o *options) { o.regexp = true })
}

// WithManagerOptions passes options, such as [dbm.WithLogger] or
// [dbm.WithTracer], to the manager.
func WithManagerOptions(opts ...dbm.Option) Option {
	return optionFunc(func(o *options) { o.manager = append(o.manager, opts...) })
}

// NewMock returns a [dbm.Manager] over a go-sqlmock connection, and the
// [sqlmock.Sqlmock] to set expectations on.
//
// By default an expected statement matches when it equals the statement the
// manager sends after white space is collapsed (every run of spaces, tabs
// and newlines counts as one space; leading and trailing space and
// semicolons are ignored). The expectation is rebound as the manager
// rebinds statements, so write it with the same '?' placeholders as the code
// under test. [WithRegexpMatching] switches to regular expressions.
//
// A call the mock does not expect (another statement or other arguments
// than the next expectation's, a Begin, Commit or Rollback out of turn, a
// call after every expectation was met) fails the test at once through
// t.Errorf with the expected and the actual call, and returns a
// [*MismatchError] to the code under test. Errors scripted with
// WillReturnError are returned unchanged.
//
// When the test ends, NewMock's cleanup reports through t.Errorf every
// expectation that was not met and any rows or transaction left open, then
// closes the manager. A failure to create the mock ends the test with
// t.Fatalf.
func NewMock(t testing.TB, opts ...Option) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	o := options{driver: dbm.DriverPostgres}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	matcher := sqlmock.QueryMatcherRegexp
	if !o.regexp {
		matcher = equalMatcher(o.driver)
	}
	r := &reporter{t: t}
	db, mock, err := openMock(r, matcher)
	if err != nil {
		t.Fatalf("dbmtest: sqlmock: %v", err)
		return nil, nil
	}
	if !o.regexp && sqlx.BindType(o.driver) == sqlx.DOLLAR {
		mock = rebindingMock{mock}
	}
	m, err := dbm.Wrap(db, o.driver, o.manager...)
	if err != nil {
		_ = db.Close()
		t.Fatalf("dbmtest: %v", err)
		return nil, nil
	}
	t.Cleanup(func() {
		r.end()
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("dbmtest: %v", err)
		}
		verifyNothingOpen(t, m)
		_ = m.Close()
	})
	return m, mock
}

// mocks numbers the databases openMock makes.
var mocks atomic.Int64

// openMock returns a *sql.DB over a new go-sqlmock database whose
// connections report every mismatch through r (see mismatch.go).
// go-sqlmock opens its own *sql.DB, which is closed once ours holds a
// connection to the same mock (closing the last would forget the mock).
func openMock(r *reporter, matcher sqlmock.QueryMatcher) (*sql.DB, sqlmock.Sqlmock, error) {
	dsn := "dbmtest_" + strconv.FormatInt(mocks.Add(1), 10)
	own, mock, err := sqlmock.NewWithDSN(dsn, sqlmock.QueryMatcherOption(matcher))
	if err != nil {
		if own != nil {
			_ = own.Close()
		}
		return nil, nil, err
	}
	db := sql.OpenDB(&connector{drv: own.Driver(), dsn: dsn, r: r})
	err = db.Ping()
	_ = own.Close() // its connection's Close reports an unexpected Close: nothing is expected yet
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, mock, nil
}

// rebindingMock writes the statements of expectations as the manager sends
// them ('?' becomes $1, $2, ... for PostgreSQL), so that go-sqlmock's
// messages show the expected and the actual statement in the same form.
type rebindingMock struct{ sqlmock.Sqlmock }

func (m rebindingMock) ExpectQuery(expectedSQL string) *sqlmock.ExpectedQuery {
	return m.Sqlmock.ExpectQuery(sqltext.Rebind(expectedSQL))
}

func (m rebindingMock) ExpectExec(expectedSQL string) *sqlmock.ExpectedExec {
	return m.Sqlmock.ExpectExec(sqltext.Rebind(expectedSQL))
}

func (m rebindingMock) ExpectPrepare(expectedSQL string) *sqlmock.ExpectedPrepare {
	return m.Sqlmock.ExpectPrepare(sqltext.Rebind(expectedSQL))
}

// verifyNothingOpen is the one place where NewMock's cleanup checks that the
// test closed its rows and ended its transactions: [VerifyNoLeaks] names
// each one with the file:line that opened it. When the manager was made
// with leak tracking off, connections still in use are all the pool can
// tell.
func verifyNothingOpen(t testing.TB, m *dbm.Manager) {
	VerifyNoLeaks(t, m)
	if n := m.Stats().InUse; n > 0 && len(m.Leaks()) == 0 {
		t.Errorf("dbmtest: %d connection(s) still in use when the test ended: rows not closed or a transaction not committed or rolled back", n)
	}
}

// equalMatcher compares statements for equality after collapsing white
// space, with the expectation trimmed and rebound as the manager does for
// driverName.
func equalMatcher(driverName string) sqlmock.QueryMatcher {
	// The manager's rule (see dbm.Wrap): sqlx's $n drivers, which include
	// "postgres" and "pgx".
	numbered := sqlx.BindType(driverName) == sqlx.DOLLAR
	return sqlmock.QueryMatcherFunc(func(expected, actual string) error {
		want := sqltext.Trim(expected)
		if numbered {
			want = sqltext.Rebind(want)
		}
		got := collapse(sqltext.Trim(actual))
		if collapse(want) == got {
			return nil
		}
		// Both as sent to the driver: the expectation rebound as the
		// manager rebinds the statement.
		return fmt.Errorf("statement %q, not %q (compared with white space collapsed)", collapse(want), got)
	})
}

// collapse replaces every run of white space with one space and trims the
// ends.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}
