package dbmtest

import (
	"fmt"
	"strings"
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
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(matcher))
	if err != nil {
		t.Fatalf("dbmtest: sqlmock: %v", err)
		return nil, nil
	}
	m, err := dbm.Wrap(db, o.driver, o.manager...)
	if err != nil {
		_ = db.Close()
		t.Fatalf("dbmtest: %v", err)
		return nil, nil
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("dbmtest: %v", err)
		}
		verifyNothingOpen(t, m)
		_ = m.Close()
	})
	return m, mock
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
		if collapse(want) == collapse(sqltext.Trim(actual)) {
			return nil
		}
		return fmt.Errorf("statement %q was not expected; the next expectation is %q (compared with white space collapsed)", collapse(actual), collapse(expected))
	})
}

// collapse replaces every run of white space with one space and trims the
// ends.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}
