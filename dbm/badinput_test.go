package dbm_test

// The bad-input table: every mistake a caller can make with the public API
// gets a typed error that says which argument or field is wrong and why,
// never a panic, never a retry, and leaves nothing open.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// errType is the typed error a bad input must produce, found with errors.As.
type errType int

const (
	argumentError errType = iota + 1 // *dbm.ArgumentError, before anything ran
	configError                      // *dbm.ConfigError
	managerError                     // *dbm.Error: the call ran and failed
	scanError                        // *dbm.ScanError
)

func (k errType) String() string {
	return [...]string{"", "*dbm.ArgumentError", "*dbm.ConfigError", "*dbm.Error", "*dbm.ScanError"}[k]
}

// match reports whether err is, or wraps, the type, and the class
// dbm.Classify must give it.
func (k errType) match(err error) (ok bool, class dbm.Class) {
	switch k {
	case argumentError:
		var e *dbm.ArgumentError
		return errors.As(err, &e), dbm.ClassInvalidArgument
	case configError:
		var e *dbm.ConfigError
		return errors.As(err, &e), dbm.ClassConfig
	case managerError:
		var e *dbm.Error
		if !errors.As(err, &e) {
			return false, 0
		}
		return true, e.Class
	case scanError:
		var e *dbm.ScanError
		return errors.As(err, &e), dbm.ClassScan
	}
	return false, 0
}

// badCase is one bad input. call makes the mistake and returns the error.
type badCase struct {
	group, name string
	call        func(f *badFixture) error
	is          error    // the sentinel the error must match
	as          errType  // the typed error it must be
	text        []string // what its message must say: the argument or field, and what is wrong
	absent      []string // what it must not say (secrets)
}

// badFixture hands out managers to a case and, afterwards, checks that the
// bad input left no rows, transaction or connection open on them.
type badFixture struct {
	t        *testing.T
	ctx      context.Context
	managers []*dbm.Manager
}

func (f *badFixture) keep(m *dbm.Manager) *dbm.Manager {
	f.managers = append(f.managers, m)
	return m
}

func (f *badFixture) sqlite() *dbm.Manager { return f.keep(newSQLite(f.t)) }

func (f *badFixture) postgres() *dbm.Manager { return f.keep(newPostgres(f.t)) }

func (f *badFixture) mysql() *dbm.Manager {
	const addr = "127.0.0.1:3306"
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		missingServer(f.t, "MariaDB at "+addr, err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Database: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { m.Close() })
	return f.keep(m)
}

// closed returns a manager that was closed.
func (f *badFixture) closed() *dbm.Manager {
	m := f.sqlite()
	if err := m.Close(); err != nil {
		f.t.Fatal(err)
	}
	return m
}

// ended returns a transaction of an SQLite manager, committed (or rolled
// back).
func (f *badFixture) ended(commit bool) *dbm.Tx {
	tx, err := f.sqlite().BeginTx(f.ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return tx
}

// rawRows runs query on an SQLite manager's *sql.DB: rows the manager does
// not track, as ScanAll and ScanOne get them. The manager's check that no
// connection is in use afterwards sees them.
func (f *badFixture) rawRows(query string) *sql.Rows {
	rows, err := f.sqlite().DB().QueryContext(f.ctx, query)
	if err != nil {
		f.t.Fatal(err)
	}
	return rows
}

// rows runs query on an SQLite manager and hands the open rows to use,
// closing them afterwards.
func (f *badFixture) rows(query string, use func(*dbm.Rows) error) error {
	rows, err := f.sqlite().Query(f.ctx, query)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	return use(rows)
}

// txRows runs query in a transaction, ends the transaction with the rows
// still open and hands them to use.
func (f *badFixture) txRows(query string, use func(*dbm.Rows) error) error {
	tx, err := f.sqlite().BeginTx(f.ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	rows, err := tx.Query(f.ctx, query)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
	return use(rows)
}

// loadEnv runs LoadConfig with one variable set.
func (f *badFixture) loadEnv(name, value string) error {
	clearDBEnv(f.t)
	f.t.Setenv(name, value)
	_, err := dbm.LoadConfig()
	return err
}

// newWith runs New with cfg; it must fail before connecting.
func (f *badFixture) newWith(cfg dbm.Config, opts ...dbm.Option) error {
	m, err := dbm.New(f.ctx, cfg, opts...)
	if m != nil {
		f.t.Error("New returned a manager along with its error")
		m.Close()
	}
	return err
}

// pgCfg is a valid Config except for what a case changes.
func pgCfg(change func(*dbm.Config)) dbm.Config {
	c := dbm.Config{Host: "127.0.0.1", User: "app", Database: "app"}
	change(&c)
	return c
}

// first returns the first error Iter yields.
func first[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return errors.New("test: Iter yielded no error")
}

type unexportedOnly struct {
	secret string //lint:ignore U1000 the point of the type
}

// badInputCases returns the table, and the slice of accounts its
// ExecuteQuery cases scan into, which every failed call must leave empty.
func badInputCases(ctx context.Context) ([]badCase, *[]Account) {
	var (
		nilCtx   context.Context // a nil context, passed where Go allows it
		accounts []Account
		account  Account
		nilM     *dbm.Manager
		nilTx    *dbm.Tx
		nilRows  *dbm.Rows
	)
	noop := func(context.Context, *dbm.Tx) error { return nil }
	const twoCols = "SELECT 1 AS a, 2 AS b"
	cases := []badCase{
		// Destinations.
		{"dest", "ExecuteQuery nil dest", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, nil, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"ExecuteQuery", "dest", "nil"}, nil},
		{"dest", "ExecuteQuery non-pointer", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, accounts, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "not a pointer", "[]dbm_test.Account"}, nil},
		{"dest", "ExecuteQuery nil *[]T", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, (*[]Account)(nil), "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "nil pointer", "*[]dbm_test.Account"}, nil},
		{"dest", "ExecuteQuery pointer to non-slice", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, &account, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "dbm_test.Account, not a slice", "use Get"}, nil},
		{"dest", "ExecuteQuery slice of chan", func(f *badFixture) error { var v []chan int; return f.sqlite().ExecuteQuery(ctx, &v, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "unsupported element type chan int"}, nil},
		{"dest", "ExecuteQuery map with int keys", func(f *badFixture) error { var v []map[int]any; return f.sqlite().ExecuteQuery(ctx, &v, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "map[int]interface {}", "must be map[string]any"}, nil},
		{"dest", "Get nil dest", func(f *badFixture) error { return f.sqlite().Get(ctx, nil, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "dest", "nil"}, nil},
		{"dest", "Get non-pointer", func(f *badFixture) error { return f.sqlite().Get(ctx, account, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "dest", "not a pointer (dbm_test.Account)"}, nil},
		{"dest", "Get nil *T", func(f *badFixture) error { return f.sqlite().Get(ctx, (*Account)(nil), "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "dest", "nil pointer (*dbm_test.Account)"}, nil},
		{"dest", "Get into a func", func(f *badFixture) error { var fn func(); return f.sqlite().Get(ctx, &fn, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "dest", "unsupported element type func()"}, nil},
		{"dest", "Get into a slice of rows", func(f *badFixture) error { return f.sqlite().Get(ctx, &accounts, "SELECT 1 AS id") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "dest", "[]dbm_test.Account is a slice", "use ExecuteQuery", "Select[dbm_test.Account]"}, nil},
		{"dest", "One of a slice of rows", func(f *badFixture) error { _, err := dbm.One[[]Account](ctx, f.sqlite(), "SELECT 1 AS id"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"One", "T", "[]dbm_test.Account is a slice", "use ExecuteQuery", "Select[dbm_test.Account]"}, nil},
		{"dest", "StructScan nil", func(f *badFixture) error {
			return f.rows("SELECT 1 AS id", func(r *dbm.Rows) error { r.Next(); return r.StructScan(nil) })
		}, dbm.ErrInvalidArgument, argumentError, []string{"StructScan", "dest", "nil"}, nil},
		{"dest", "ScanAll nil rows", func(f *badFixture) error { return dbm.ScanAll(nil, &accounts) },
			dbm.ErrInvalidArgument, argumentError, []string{"ScanAll", "rows", "nil *sql.Rows"}, nil},
		{"dest", "ScanAll nil dest", func(f *badFixture) error { return dbm.ScanAll(f.rawRows("SELECT 1 AS id"), nil) },
			dbm.ErrInvalidArgument, argumentError, []string{"ScanAll", "dest", "nil"}, nil},
		{"dest", "ScanOne non-pointer", func(f *badFixture) error { return dbm.ScanOne(f.rawRows("SELECT 1 AS id"), Account{}) },
			dbm.ErrInvalidArgument, argumentError, []string{"ScanOne", "dest", "not a pointer"}, nil},
		{"dest", "two columns for one field", func(f *badFixture) error {
			return f.sqlite().ExecuteQuery(ctx, &accounts, "SELECT 1 AS id, 2 AS id")
		}, dbm.ErrDuplicateColumn, scanError, []string{`column "id" appears twice`, "positions 1 and 2", "Account.ID"}, nil},
		{"dest", "column with no field", func(f *badFixture) error {
			return f.sqlite().ExecuteQuery(ctx, &accounts, "SELECT 1 AS id, 'x' AS surprise")
		}, dbm.ErrUnknownColumn, scanError, []string{`column "surprise"`, "no destination field in dbm_test.Account"}, nil},
		{"dest", "struct with unexported fields only", func(f *badFixture) error {
			var v []unexportedOnly
			return f.sqlite().ExecuteQuery(ctx, &v, "SELECT 'x' AS secret")
		}, dbm.ErrUnknownColumn, scanError, []string{`column "secret"`, "field secret is unexported"}, nil},
		{"dest", "NULL into string", func(f *badFixture) error {
			return f.sqlite().ExecuteQuery(ctx, &accounts, "SELECT 1 AS id, NULL AS name")
		},
			dbm.ErrNullValue, scanError, []string{`column "name"`, "Account.Name (string)", "cannot hold NULL"}, nil},
		{"dest", "NULL into an int64", func(f *badFixture) error { _, err := dbm.One[int64](ctx, f.sqlite(), "SELECT NULL AS n"); return err },
			dbm.ErrNullValue, scanError, []string{`column "n"`, "int64", "cannot hold NULL"}, nil},
		{"dest", "text into int field", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, &accounts, "SELECT 'abc' AS id") },
			nil, scanError, []string{`column "id"`, "Account.ID (int64)", `"abc"`}, nil},
		{"dest", "scalar from two columns", func(f *badFixture) error { var v []int; return f.sqlite().ExecuteQuery(ctx, &v, twoCols) },
			dbm.ErrInvalidArgument, argumentError, []string{"dest", "int takes exactly one column", "returned 2 (a, b)"}, nil},
		{"dest", "Select of chan", func(f *badFixture) error { _, err := dbm.Select[chan int](ctx, f.sqlite(), "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Select", "T", "unsupported element type chan int"}, nil},
		{"dest", "One of map with int keys", func(f *badFixture) error { _, err := dbm.One[map[int]string](ctx, f.sqlite(), "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"One", "T", "map[int]string"}, nil},
		{"dest", "Iter of func", func(f *badFixture) error { return first(dbm.Iter[func()](ctx, f.sqlite(), "SELECT 1")) },
			dbm.ErrInvalidArgument, argumentError, []string{"Iter", "T", "unsupported element type func()"}, nil},

		// Configuration.
		{"config", "Port out of range", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.Port = 70000 })) },
			dbm.ErrConfig, configError, []string{"Port", `"70000"`, "1-65535"}, nil},
		{"config", "negative Port", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.Port = -1 })) },
			dbm.ErrConfig, configError, []string{"Port", `"-1"`, "out of range"}, nil},
		{"config", "negative MaxOpenConns", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.MaxOpenConns = -1 })) },
			dbm.ErrConfig, configError, []string{"MaxOpenConns", "must not be negative"}, nil},
		{"config", "negative MaxIdleConns", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.MaxIdleConns = -2 })) },
			dbm.ErrConfig, configError, []string{"MaxIdleConns", `"-2"`, "must not be negative"}, nil},
		{"config", "MaxIdleConns over MaxOpenConns", func(f *badFixture) error {
			return f.newWith(pgCfg(func(c *dbm.Config) { c.MaxOpenConns, c.MaxIdleConns = 5, 20 }))
		}, dbm.ErrConfig, configError, []string{"MaxIdleConns", `"20"`, "larger than MaxOpenConns (5)"}, nil},
		{"config", "unknown driver", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.Driver = "oracle" })) },
			dbm.ErrConfig, configError, []string{"Driver", `"oracle"`, "unknown driver", "postgres, pgx, mysql, sqlite"}, nil},
		{"config", "unknown sslmode", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.SSLMode = "strict" })) },
			dbm.ErrConfig, configError, []string{"SSLMode", `"strict"`, "unknown mode", "verify-full"}, nil},
		{"config", "sslmode and Params[tls] for MySQL", func(f *badFixture) error {
			return f.newWith(pgCfg(func(c *dbm.Config) {
				c.Driver, c.SSLMode, c.Params = dbm.DriverMySQL, "require", map[string]string{"tls": "true"}
			}))
		}, dbm.ErrConfig, configError, []string{"SSLMode", `Params["tls"]`, "one of them"}, nil},
		{"config", "SQLite without a database", func(f *badFixture) error { return f.newWith(dbm.Config{Driver: dbm.DriverSQLite}) },
			dbm.ErrConfig, configError, []string{"Database", `":memory:"`}, nil},
		{"config", "port inside Host", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.Host = "db:5432" })) },
			dbm.ErrConfig, configError, []string{"Host", `"db:5432"`, "put the port in Port"}, nil},
		{"config", "initial backoff over max backoff", func(f *badFixture) error {
			return f.newWith(pgCfg(func(c *dbm.Config) { c.RetryInitialBackoff, c.RetryMaxBackoff = 2*time.Second, time.Second }))
		}, dbm.ErrConfig, configError, []string{"RetryInitialBackoff", `"2s"`, "larger than RetryMaxBackoff (1s)"}, nil},
		{"config", "negative RetryMaxAttempts", func(f *badFixture) error { return f.newWith(pgCfg(func(c *dbm.Config) { c.RetryMaxAttempts = -1 })) },
			dbm.ErrConfig, configError, []string{"RetryMaxAttempts", "must not be negative"}, nil},
		{"config", "DSN that is not a URL", func(f *badFixture) error {
			return f.newWith(dbm.Config{DSN: "postgres://app:pa ss%zz-Vq3@db/app"})
		}, dbm.ErrConfig, configError, []string{"DSN", "not a valid URL", "percent-encode"}, []string{"Vq3", "pa ss"}},
		{"config", "empty Params name", func(f *badFixture) error {
			return f.newWith(pgCfg(func(c *dbm.Config) { c.Params = map[string]string{"": "x"} }))
		},
			dbm.ErrConfig, configError, []string{"Params", "empty parameter name"}, nil},
		{"config", "Params name with a space", func(f *badFixture) error {
			return f.newWith(pgCfg(func(c *dbm.Config) { c.Params = map[string]string{"application name": "api"} }))
		}, dbm.ErrConfig, configError, []string{"Params", `"application name"`, "letters, digits"}, nil},
		{"config", "DB_PORT not a number", func(f *badFixture) error { return f.loadEnv("DB_PORT", "abc") },
			dbm.ErrConfig, configError, []string{"Port (DB_PORT)", `"abc"`, "not a whole number"}, nil},
		{"config", "DB_CONN_MAX_LIFETIME without a unit", func(f *badFixture) error { return f.loadEnv("DB_CONN_MAX_LIFETIME", "30") },
			dbm.ErrConfig, configError, []string{"DB_CONN_MAX_LIFETIME", `"30"`, "not a duration", `"30s"`}, nil},
		{"config", "negative DB_ACQUIRE_TIMEOUT", func(f *badFixture) error { return f.loadEnv("DB_ACQUIRE_TIMEOUT", "-1s") },
			dbm.ErrConfig, configError, []string{"AcquireTimeout (DB_ACQUIRE_TIMEOUT)", `"-1s"`, "must not be negative"}, nil},
		{"config", "DB_LEAK_STACKS not a boolean", func(f *badFixture) error { return f.loadEnv("DB_LEAK_STACKS", "maybe") },
			dbm.ErrConfig, configError, []string{"DB_LEAK_STACKS", `"maybe"`, "not a boolean"}, nil},
		{"config", "DB_PARAMS without '=' holding a secret", func(f *badFixture) error { return f.loadEnv("DB_PARAMS", "password=Hx8-param,oops") },
			dbm.ErrConfig, configError, []string{"DB_PARAMS", "key=value pairs"}, []string{"Hx8-param"}},
		{"config", "missing .env file", func(f *badFixture) error { _, err := dbm.LoadConfig(envDir + "no-such.env"); return err },
			dbm.ErrConfig, configError, []string{"envFiles", "no-such.env", "does not exist"}, nil},
		{"config", "unparsable .env file", func(f *badFixture) error {
			name := filepath.Join(f.t.TempDir(), "bad.env")
			if err := os.WriteFile(name, []byte("DB_PASSWORD='Jw5-file-secret\nDB_HOST=db\n"), 0o600); err != nil {
				f.t.Fatal(err)
			}
			_, err := dbm.LoadConfig(name)
			return err
		}, dbm.ErrConfig, configError, []string{"envFiles", "bad.env", "cannot parse"}, []string{"Jw5-file-secret"}},

		// Options and constructors.
		{"options", "New with a nil context", func(f *badFixture) error {
			_, err := dbm.New(nilCtx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"})
			return err
		}, dbm.ErrInvalidArgument, argumentError, []string{"New", "ctx", "nil context"}, nil},
		{"options", "New with a negative leak threshold", func(f *badFixture) error {
			return f.newWith(dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, dbm.WithLeakThreshold(-time.Second))
		}, dbm.ErrInvalidArgument, argumentError, []string{"New", "WithLeakThreshold", "negative", "-1s"}, nil},
		{"options", "Wrap with a negative leak threshold", func(f *badFixture) error {
			db, err := sql.Open("sqlite", "file:/dbm-badinput?vfs=memdb")
			if err != nil {
				f.t.Fatal(err)
			}
			defer db.Close()
			_, err = dbm.Wrap(db, dbm.DriverSQLite, dbm.WithLeakThreshold(-time.Millisecond))
			return err
		}, dbm.ErrInvalidArgument, argumentError, []string{"Wrap", "WithLeakThreshold", "negative"}, nil},
		{"options", "Wrap of a nil pool", func(f *badFixture) error { _, err := dbm.Wrap(nil, dbm.DriverPostgres); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Wrap", "db", "nil *sql.DB"}, nil},

		// Statements and their arguments.
		{"query", "empty statement", func(f *badFixture) error { _, err := f.sqlite().Exec(ctx, ""); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "query", "empty statement"}, nil},
		{"query", "only semicolons", func(f *badFixture) error { return f.sqlite().ExecuteQuery(ctx, &accounts, " ;; ") },
			dbm.ErrInvalidArgument, argumentError, []string{"ExecuteQuery", "query", "empty statement"}, nil},
		{"query", "too few arguments (SQLite)", func(f *badFixture) error { var v []int; return f.sqlite().ExecuteQuery(ctx, &v, "SELECT ? + ?", 1) },
			dbm.ErrInvalidArgument, managerError, []string{"invalid_argument", "missing argument with index 2", "SELECT ? + ?"}, nil},
		{"query", "too few arguments (lib/pq)", func(f *badFixture) error {
			var v []int
			return f.postgres().ExecuteQuery(ctx, &v, "SELECT ?::int + ?::int", 1)
		},
			dbm.ErrInvalidArgument, managerError, []string{"invalid_argument", "got 1 parameters but the statement requires 2"}, nil},
		{"query", "too many arguments (lib/pq)", func(f *badFixture) error { _, err := f.postgres().Exec(ctx, "SELECT 1", 1, 2); return err },
			dbm.ErrInvalidArgument, managerError, []string{"invalid_argument", "got 2 parameters but the statement requires 0"}, nil},
		{"query", "too few arguments (MySQL)", func(f *badFixture) error { var v []int; return f.mysql().ExecuteQuery(ctx, &v, "SELECT ? + ?", 1) },
			dbm.ErrInvalidArgument, managerError, []string{"invalid_argument", "expected 2 arguments, got 1"}, nil},
		{"query", "argument of an unsupported type", func(f *badFixture) error { _, err := f.sqlite().Exec(ctx, "SELECT ?", make(chan int)); return err },
			dbm.ErrInvalidArgument, managerError, []string{"invalid_argument", "converting argument $1", "chan int"}, nil},
		{"query", "WithTx with a nil fn", func(f *badFixture) error { return f.sqlite().WithTx(ctx, nil, nil) },
			dbm.ErrInvalidArgument, argumentError, []string{"WithTx", "fn", "nil function"}, nil},
		{"query", "isolation level the driver lacks", func(f *badFixture) error {
			_, err := f.postgres().BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSnapshot})
			return err
		}, dbm.ErrInvalidArgument, argumentError, []string{"BeginTx", "opts.Isolation", "Snapshot", "not supported by postgres", "Serializable"}, nil},
		{"query", "isolation level that does not exist", func(f *badFixture) error {
			return f.sqlite().WithTx(ctx, &sql.TxOptions{Isolation: 99}, noop)
		}, dbm.ErrInvalidArgument, argumentError, []string{"opts.Isolation", "IsolationLevel(99)", "not an isolation level"}, nil},

		// Nil contexts (database/sql would panic on them).
		{"nil ctx", "ExecuteQuery", func(f *badFixture) error { return f.sqlite().ExecuteQuery(nilCtx, &accounts, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"ExecuteQuery", "ctx", "nil context"}, nil},
		{"nil ctx", "Get", func(f *badFixture) error { return f.sqlite().Get(nilCtx, &account, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"Get", "ctx", "nil context"}, nil},
		{"nil ctx", "Exec", func(f *badFixture) error { _, err := f.sqlite().Exec(nilCtx, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "ctx", "nil context"}, nil},
		{"nil ctx", "Query", func(f *badFixture) error { _, err := f.sqlite().Query(nilCtx, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Query", "ctx", "nil context"}, nil},
		{"nil ctx", "BeginTx", func(f *badFixture) error { _, err := f.sqlite().BeginTx(nilCtx, nil); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"BeginTx", "ctx", "nil context"}, nil},
		{"nil ctx", "WithTx", func(f *badFixture) error { return f.sqlite().WithTx(nilCtx, nil, noop) },
			dbm.ErrInvalidArgument, argumentError, []string{"WithTx", "ctx", "nil context"}, nil},
		{"nil ctx", "Ping", func(f *badFixture) error { return f.sqlite().Ping(nilCtx) },
			dbm.ErrInvalidArgument, argumentError, []string{"Ping", "ctx", "nil context"}, nil},
		{"nil ctx", "Select", func(f *badFixture) error { _, err := dbm.Select[int](nilCtx, f.sqlite(), "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Select", "ctx", "nil context"}, nil},
		{"nil ctx", "One", func(f *badFixture) error { _, err := dbm.One[int](nilCtx, f.sqlite(), "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"One", "ctx", "nil context"}, nil},
		{"nil ctx", "Iter", func(f *badFixture) error { return first(dbm.Iter[int](nilCtx, f.sqlite(), "SELECT 1")) },
			dbm.ErrInvalidArgument, argumentError, []string{"Iter", "ctx", "nil context"}, nil},
		{"nil ctx", "Tx.Exec", func(f *badFixture) error {
			tx, err := f.sqlite().BeginTx(ctx, nil)
			if err != nil {
				f.t.Fatal(err)
			}
			defer tx.Rollback()
			_, err = tx.Exec(nilCtx, "SELECT 1")
			return err
		}, dbm.ErrInvalidArgument, argumentError, []string{"Exec", "ctx", "nil context"}, nil},
		{"nil ctx", "IgnoreUnknownColumns(nil)", func(f *badFixture) error {
			return f.sqlite().ExecuteQuery(dbm.IgnoreUnknownColumns(nilCtx), &accounts, "SELECT 1")
		}, dbm.ErrInvalidArgument, argumentError, []string{"ExecuteQuery", "ctx", "nil context"}, nil},
		{"nil ctx", "Idempotent(nil)", func(f *badFixture) error { _, err := f.sqlite().Exec(dbm.Idempotent(nilCtx), "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "ctx", "nil context"}, nil},
		{"nil ctx", "NotIdempotent(nil)", func(f *badFixture) error {
			_, err := f.sqlite().Query(dbm.NotIdempotent(nilCtx), "SELECT 1")
			return err
		},
			dbm.ErrInvalidArgument, argumentError, []string{"Query", "ctx", "nil context"}, nil},

		// Transactions used after Commit or Rollback.
		{"ended tx", "Exec after Commit", func(f *badFixture) error { _, err := f.ended(true).Exec(ctx, "SELECT 1"); return err },
			dbm.ErrClosed, managerError, []string{"exec", "closed", "already been committed or rolled back"}, nil},
		{"ended tx", "Query after Rollback", func(f *badFixture) error { _, err := f.ended(false).Query(ctx, "SELECT 1"); return err },
			dbm.ErrClosed, managerError, []string{"query", "closed", "already been committed or rolled back"}, nil},
		{"ended tx", "Get after Commit", func(f *badFixture) error { return f.ended(true).Get(ctx, &account, "SELECT 1") },
			dbm.ErrClosed, managerError, []string{"query", "closed", "already been committed or rolled back"}, nil},
		{"ended tx", "ExecuteQuery after Rollback", func(f *badFixture) error { return f.ended(false).ExecuteQuery(ctx, &accounts, "SELECT 1") },
			dbm.ErrClosed, managerError, []string{"query", "closed", "already been committed or rolled back"}, nil},
		{"ended tx", "Commit twice", func(f *badFixture) error { return f.ended(true).Commit() },
			dbm.ErrClosed, managerError, []string{"commit", "closed", "already been committed or rolled back"}, nil},
		{"ended tx", "Commit after Rollback", func(f *badFixture) error { return f.ended(false).Commit() },
			dbm.ErrClosed, managerError, []string{"commit", "closed"}, nil},
		{"ended tx", "WithTx fn that rolls back itself", func(f *badFixture) error {
			return f.sqlite().WithTx(ctx, nil, func(_ context.Context, tx *dbm.Tx) error { return tx.Rollback() })
		}, dbm.ErrClosed, managerError, []string{"commit", "fn rolled back the transaction"}, nil},
		{"ended tx", "Commit after the manager closed", func(f *badFixture) error {
			m := f.sqlite()
			tx, err := m.BeginTx(ctx, nil)
			if err != nil {
				f.t.Fatal(err)
			}
			m.Close() // reports the open transaction; that is not this case's error
			return tx.Commit()
		}, dbm.ErrClosed, managerError, []string{"commit", "manager is closed"}, nil},
		{"ended tx", "rows read after their tx committed (Err)", func(f *badFixture) error {
			return f.txRows("SELECT 1 AS id UNION ALL SELECT 2", func(r *dbm.Rows) error {
				for r.Next() {
				}
				return r.Err()
			})
		}, dbm.ErrClosed, managerError, []string{"closed", "transaction ended (Commit or Rollback) while the rows were open"}, nil},
		{"ended tx", "rows scanned after their tx committed", func(f *badFixture) error {
			return f.txRows("SELECT 1 AS id", func(r *dbm.Rows) error { var id int; return r.Scan(&id) })
		}, dbm.ErrClosed, managerError, []string{"scan", "closed", "transaction ended"}, nil},

		// Rows used after Close, or wrongly.
		{"rows", "Scan after Close", func(f *badFixture) error {
			return f.rows("SELECT 1 AS id", func(r *dbm.Rows) error { r.Next(); r.Close(); var id int; return r.Scan(&id) })
		}, dbm.ErrClosed, managerError, []string{"scan", "closed", "Close was called"}, nil},
		{"rows", "StructScan after Close", func(f *badFixture) error {
			return f.rows("SELECT 1 AS id", func(r *dbm.Rows) error { r.Next(); r.Close(); return r.StructScan(&account) })
		}, dbm.ErrClosed, managerError, []string{"scan", "closed", "Close was called"}, nil},
		{"rows", "Columns after Close", func(f *badFixture) error {
			return f.rows("SELECT 1 AS id", func(r *dbm.Rows) error { r.Close(); _, err := r.Columns(); return err })
		}, dbm.ErrClosed, managerError, []string{"closed", "Close was called"}, nil},
		{"rows", "Scan after the last row", func(f *badFixture) error {
			return f.rows("SELECT 1 AS id", func(r *dbm.Rows) error {
				for r.Next() {
				}
				var id int
				return r.Scan(&id)
			})
		}, dbm.ErrClosed, managerError, []string{"scan", "closed", "Next returned false"}, nil},
		{"rows", "Scan before Next", func(f *badFixture) error {
			return f.rows(twoCols, func(r *dbm.Rows) error { var a, b int; return r.Scan(&a, &b) })
		}, dbm.ErrInvalidArgument, managerError, []string{"scan", "invalid_argument", "Scan called without calling Next"}, nil},
		{"rows", "Scan with too few destinations", func(f *badFixture) error {
			return f.rows(twoCols, func(r *dbm.Rows) error { r.Next(); var a int; return r.Scan(&a) })
		}, dbm.ErrInvalidArgument, managerError, []string{"scan", "invalid_argument", "expected 2 destination arguments in Scan, not 1"}, nil},
		{"rows", "Scan into a non-pointer", func(f *badFixture) error {
			return f.rows(twoCols, func(r *dbm.Rows) error { r.Next(); var a, b int; return r.Scan(&a, b) })
		}, dbm.ErrInvalidArgument, managerError, []string{"scan", "invalid_argument", `column index 1, name "b": destination not a pointer`}, nil},

		// Nil receivers and Queriers: a manager whose New failed, a Tx whose
		// BeginTx failed, rows whose Query failed, with the error ignored.
		{"nil receiver", "nil *Manager ExecuteQuery", func(f *badFixture) error { return nilM.ExecuteQuery(ctx, &accounts, "SELECT 1") },
			dbm.ErrInvalidArgument, argumentError, []string{"ExecuteQuery", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager Exec", func(f *badFixture) error { _, err := nilM.Exec(ctx, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager BeginTx", func(f *badFixture) error { _, err := nilM.BeginTx(ctx, nil); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"BeginTx", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager WithTx", func(f *badFixture) error { return nilM.WithTx(ctx, nil, noop) },
			dbm.ErrInvalidArgument, argumentError, []string{"WithTx", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager Ping", func(f *badFixture) error { return nilM.Ping(ctx) },
			dbm.ErrInvalidArgument, argumentError, []string{"Ping", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager Close", func(f *badFixture) error { return nilM.Close() },
			dbm.ErrInvalidArgument, argumentError, []string{"Close", "receiver", "nil *dbm.Manager"}, nil},
		{"nil receiver", "nil *Manager as Querier", func(f *badFixture) error { _, err := dbm.Select[int](ctx, nilM, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Select", "q", "nil"}, nil},
		{"nil receiver", "nil Querier", func(f *badFixture) error { _, err := dbm.One[int](ctx, nil, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"One", "q", "nil Querier"}, nil},
		{"nil receiver", "nil *Tx as Querier", func(f *badFixture) error { return first(dbm.Iter[int](ctx, nilTx, "SELECT 1")) },
			dbm.ErrInvalidArgument, argumentError, []string{"Iter", "q", "nil"}, nil},
		{"nil receiver", "nil *Tx Commit", func(f *badFixture) error { return nilTx.Commit() },
			dbm.ErrInvalidArgument, argumentError, []string{"Commit", "receiver", "nil *dbm.Tx"}, nil},
		{"nil receiver", "nil *Tx Rollback", func(f *badFixture) error { return nilTx.Rollback() },
			dbm.ErrInvalidArgument, argumentError, []string{"Rollback", "receiver", "nil *dbm.Tx"}, nil},
		{"nil receiver", "nil *Tx Exec", func(f *badFixture) error { _, err := nilTx.Exec(ctx, "SELECT 1"); return err },
			dbm.ErrInvalidArgument, argumentError, []string{"Exec", "receiver", "nil *dbm.Tx"}, nil},
		{"nil receiver", "zero Tx Commit", func(f *badFixture) error { return new(dbm.Tx).Commit() },
			dbm.ErrInvalidArgument, argumentError, []string{"Commit", "receiver", "BeginTx"}, nil},
		{"nil receiver", "nil *Rows Close", func(f *badFixture) error { return nilRows.Close() },
			dbm.ErrInvalidArgument, argumentError, []string{"Close", "receiver", "nil *dbm.Rows"}, nil},
		{"nil receiver", "nil *Rows Scan", func(f *badFixture) error {
			if nilRows.Next() {
				f.t.Error("Next on nil *Rows reported a row")
			}
			var id int
			return nilRows.Scan(&id)
		}, dbm.ErrInvalidArgument, argumentError, []string{"Scan", "receiver", "nil *dbm.Rows"}, nil},
		{"nil receiver", "nil *Rows Err", func(f *badFixture) error { return nilRows.Err() },
			dbm.ErrInvalidArgument, argumentError, []string{"Err", "receiver", "nil *dbm.Rows"}, nil},
	}

	// Every call on a closed manager.
	closedCalls := []struct {
		name string
		call func(m *dbm.Manager) error
	}{
		{"ExecuteQuery", func(m *dbm.Manager) error { return m.ExecuteQuery(ctx, &accounts, "SELECT 1") }},
		{"Get", func(m *dbm.Manager) error { return m.Get(ctx, &account, "SELECT 1") }},
		{"Exec", func(m *dbm.Manager) error { _, err := m.Exec(ctx, "SELECT 1"); return err }},
		{"Query", func(m *dbm.Manager) error { _, err := m.Query(ctx, "SELECT 1"); return err }},
		{"BeginTx", func(m *dbm.Manager) error { _, err := m.BeginTx(ctx, nil); return err }},
		{"WithTx", func(m *dbm.Manager) error { return m.WithTx(ctx, nil, noop) }},
		{"Ping", func(m *dbm.Manager) error { return m.Ping(ctx) }},
		{"Select", func(m *dbm.Manager) error { _, err := dbm.Select[Account](ctx, m, "SELECT 1"); return err }},
		{"One", func(m *dbm.Manager) error { _, err := dbm.One[Account](ctx, m, "SELECT 1"); return err }},
		{"Iter", func(m *dbm.Manager) error { return first(dbm.Iter[Account](ctx, m, "SELECT 1")) }},
	}
	for _, c := range closedCalls {
		cases = append(cases, badCase{"closed manager", c.name + " after Close", func(f *badFixture) error { return c.call(f.closed()) },
			dbm.ErrClosed, managerError, []string{"closed", "manager is closed"}, nil})
	}
	cases = append(cases, pinnedBadCases(ctx)...) // badinput_pinned_test.go
	return cases, &accounts
}

func TestBadInputTable(t *testing.T) {
	ctx := context.Background()
	cases, accounts := badInputCases(ctx)
	if len(cases) < 40 {
		t.Fatalf("%d cases; the table promises at least 40", len(cases))
	}
	groups := map[string]int{}
	for _, tc := range cases {
		groups[tc.group]++
		t.Run(tc.group+"/"+tc.name, func(t *testing.T) {
			f := &badFixture{t: t, ctx: ctx}
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panicked: %v", p)
					}
				}()
				err = tc.call(f)
			}()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "dbm: ") {
				t.Errorf("error %q does not start with the package prefix \"dbm: \"", msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q (%T) does not match %v", msg, err, tc.is)
			}
			ok, class := tc.as.match(err)
			if !ok {
				t.Errorf("error %q is a %T, want a %v", msg, err, tc.as)
			} else if got := dbm.Classify(err); got != class || tc.is != nil && class.Sentinel() != nil && class.Sentinel() != tc.is {
				t.Errorf("Classify = %v (sentinel %v), want the class of %v", got, got.Sentinel(), tc.is)
			}
			if dbm.IsRetryable(err) {
				t.Errorf("a caller's mistake is retryable: %v", err)
			}
			for _, want := range tc.text {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			for _, secret := range tc.absent {
				if out := fmtAll(err); strings.Contains(out, secret) {
					t.Errorf("error shows the secret %q: %s", secret, out)
				}
			}
			if len(*accounts) != 0 {
				t.Errorf("the destination kept %d rows after the error", len(*accounts))
			}
			for _, m := range f.managers {
				if leaks := m.Leaks(); len(leaks) > 0 {
					t.Errorf("the bad input left open: %v", leaks)
				}
				if n := m.Stats().InUse; n != 0 {
					t.Errorf("the bad input left %d connection(s) in use", n)
				}
			}
		})
	}
	t.Logf("%d bad inputs: %v", len(cases), groups)
}

// A nil *Manager has no statistics, no leaks and no pool: it answers with
// zero values instead of panicking (the calls that return errors are in the
// table).
func TestNilManagerAccessors(t *testing.T) {
	var m *dbm.Manager
	if s := m.Stats(); s.Statements != 0 || s.OpenConnections != 0 {
		t.Errorf("Stats of a nil manager = %+v", s)
	}
	if l := m.Leaks(); l != nil {
		t.Errorf("Leaks of a nil manager = %v", l)
	}
	if m.DB() != nil || m.DriverName() != "" {
		t.Error("a nil manager reports a pool or a driver")
	}
	if s := fmt.Sprint(m); !strings.Contains(s, "nil") {
		t.Errorf("fmt of a nil manager = %q", s)
	}
}
