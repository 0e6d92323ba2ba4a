package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func testErrors(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	d := tg.Dialect
	parent := table(t, m, tg, "parent", "id "+d.BigInt+" PRIMARY KEY")
	// Table-level FOREIGN KEY and CHECK: MySQL ignores an inline REFERENCES.
	child := table(t, m, tg, "child", "id "+d.BigInt+" PRIMARY KEY, parent_id "+d.BigInt+" NULL, "+
		"name "+d.Text+" NOT NULL, qty "+d.BigInt+" NOT NULL, "+
		"FOREIGN KEY (parent_id) REFERENCES "+parent+" (id), CHECK (qty >= 0)")
	ctx := context.Background()
	if _, err := m.Exec(ctx, "INSERT INTO "+parent+" (id) VALUES (?)", 1); err != nil {
		t.Fatalf("insert parent: %v", err)
	}
	insert := "INSERT INTO " + child + " (id, parent_id, name, qty) VALUES (?, ?, ?, ?)"
	if _, err := m.Exec(ctx, insert, 1, 1, "first", 1); err != nil {
		t.Fatalf("insert child: %v", err)
	}
	for _, c := range []struct {
		name  string
		want  error
		class dbm.Class
		query string
		args  []any
	}{
		{"unique", dbm.ErrUniqueViolation, dbm.ClassUniqueViolation, insert, []any{1, 1, "again", 1}},
		{"foreign key", dbm.ErrForeignKeyViolation, dbm.ClassForeignKeyViolation, insert, []any{2, 999, "orphan", 1}},
		{"not null", dbm.ErrNotNullViolation, dbm.ClassNotNullViolation, insert, []any{3, 1, nil, 1}},
		{"check", dbm.ErrCheckViolation, dbm.ClassCheckViolation, insert, []any{4, 1, "negative", -1}},
		{"syntax", dbm.ErrSyntax, dbm.ClassSyntax, "SELEC id FROM " + child, nil},
		{"undefined table", dbm.ErrUndefinedObject, dbm.ClassUndefinedObject, "SELECT id FROM c5_no_such_table_" + parent, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Exec(ctx, c.query, c.args...)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want a match for %v", err, c.want)
			}
			if got := dbm.Classify(err); got != c.class {
				t.Errorf("Classify = %v, want %v", got, c.class)
			}
			var e *dbm.Error
			if !errors.As(err, &e) || e.Err == nil || e.Code == "" {
				t.Errorf("err = %#v: want a *dbm.Error with the driver's error and code", err)
			}
		})
	}
	if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+child); err != nil || n != 1 {
		t.Errorf("after the failures: %d rows, %v; want only the first row", n, err)
	}
	assertIdle(t, m)
}

func testPool(t *testing.T, tg Target) {
	m := open(t, tg, func(c *dbm.Config) { c.MaxOpenConns, c.MaxIdleConns = 3, 2 })
	if got := m.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("Stats().MaxOpenConnections = %d, want Config.MaxOpenConns 3", got)
	}
	// Hold three connections at once (the pool's limit), then let them go:
	// at most MaxIdleConns stay open.
	ctx := context.Background()
	var txs []*dbm.Tx
	for range 3 {
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("BeginTx: %v", err)
		}
		txs = append(txs, tx)
	}
	if s := m.Stats(); s.InUse != 3 || s.OpenConnections != 3 {
		t.Errorf("three open transactions: InUse=%d Open=%d, want 3 and 3", s.InUse, s.OpenConnections)
	}
	for _, tx := range txs {
		if err := tx.Rollback(); err != nil {
			t.Errorf("Rollback: %v", err)
		}
	}
	if s := m.Stats(); s.InUse != 0 || s.Idle > 2 {
		t.Errorf("after the rollbacks: InUse=%d Idle=%d, want 0 and at most MaxIdleConns 2", s.InUse, s.Idle)
	}
}

func testCancel(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	for _, c := range []struct {
		name  string
		ctx   func() (context.Context, context.CancelFunc)
		want  error
		class dbm.Class
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			// The statement runs for seconds; the cancellation ends it.
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, dbm.ErrCanceled, dbm.ClassCanceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, dbm.ErrTimeout, dbm.ClassTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, call := range []struct {
				name string
				run  func(ctx context.Context) error
			}{
				{"Exec", func(ctx context.Context) error { _, err := m.Exec(ctx, tg.Dialect.Sleep); return err }},
				{"ExecuteQuery", func(ctx context.Context) error {
					var out []map[string]any
					return m.ExecuteQuery(ctx, &out, tg.Dialect.Sleep)
				}},
				{"WithTx", func(ctx context.Context) error {
					return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
						_, err := tx.Exec(ctx, tg.Dialect.Sleep)
						return err
					})
				}},
			} {
				ctx, cancel := c.ctx()
				err := call.run(ctx)
				cancel()
				if !errors.Is(err, c.want) || dbm.Classify(err) != c.class {
					t.Errorf("%s: err = %v (class %v), want %v", call.name, err, dbm.Classify(err), c.class)
				}
				// The pool is not lost: nothing stuck in use, and it still works.
				waitIdle(t, m)
				if err := m.Ping(context.Background()); err != nil {
					t.Fatalf("%s: Ping after %s: %v", call.name, c.name, err)
				}
				if n, err := dbm.One[int64](context.Background(), m, "SELECT 1"); err != nil || n != 1 {
					t.Fatalf("%s: SELECT 1 after %s = %d, %v", call.name, c.name, n, err)
				}
			}
		})
	}
}

func testLoadConfig(t *testing.T, tg Target) {
	tg.Config(t) // skip when the server is missing
	for k, v := range tg.Env(t) {
		t.Setenv(k, v)
	}
	t.Setenv("DB_MAX_OPEN_CONNS", "2")
	cfg, err := dbm.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatalf("New(LoadConfig()) with %v: %v", cfg, err)
	}
	t.Cleanup(func() { _ = m.Close() }) // after the table's drop
	if got := m.Stats().MaxOpenConnections; got != 2 {
		t.Errorf("MaxOpenConnections = %d, want DB_MAX_OPEN_CONNS 2", got)
	}
	tbl := table(t, m, tg, "env", "id "+tg.Dialect.BigInt+" PRIMARY KEY, at "+tg.Dialect.TimestampTZ+" NULL")
	if _, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id, at) VALUES (?, ?)", 1, utcTime); err != nil {
		t.Fatalf("insert: %v", err)
	}
	// A time scans into time.Time: the DSN asks the driver to parse times
	// (MySQL's parseTime).
	at, err := dbm.One[time.Time](ctx, m, "SELECT at FROM "+tbl)
	if err != nil || !at.Equal(utcTime) {
		t.Errorf("time read back = %v, %v; want %v", at, err, utcTime)
	}
}

// waitIdle fails when a connection stays in use. After a transaction's
// context ends, database/sql rolls the transaction back and releases its
// connection in a goroutine of its own, so the release may come just after
// the call returns; the bound is generous and only a stuck connection
// reaches it.
func waitIdle(t *testing.T, m *dbm.Manager) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); m.Stats().InUse != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	assertIdle(t, m)
}

// testCallMistakes: the caller's own mistakes are ErrInvalidArgument on
// every driver, reads and writes alike, whoever finds them (database/sql or
// the driver): an argument too few or too many, and an argument the driver
// cannot send. Nothing reaches the table, and none of them is retried or
// said to have an unknown outcome.
func testCallMistakes(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	d := tg.Dialect
	tbl := table(t, m, tg, "mistake", "id "+d.BigInt+" PRIMARY KEY, name "+d.Text+" NULL")
	ctx := context.Background()
	insert := "INSERT INTO " + tbl + " (id, name) VALUES (?, ?)"
	read := "SELECT id FROM " + tbl + " WHERE id = ? AND name = ?"
	unsendable := struct{ X, Y int }{1, 2}
	for _, c := range []struct {
		name string
		args []any
	}{
		{"too few arguments", []any{1}},
		{"too many arguments", []any{1, "a", 3}},
		{"an argument the driver cannot send", []any{1, unsendable}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := m.Stats().Retries
			_, werr := m.Exec(ctx, insert, c.args...)
			var id int64
			rerr := m.Get(ctx, &id, read, c.args...)
			for what, err := range map[string]error{"Exec": werr, "Get": rerr} {
				if !errors.Is(err, dbm.ErrInvalidArgument) || dbm.Classify(err) != dbm.ClassInvalidArgument {
					t.Errorf("%s: err = %v (class %v), want ErrInvalidArgument", what, err, dbm.Classify(err))
				}
				if errors.Is(err, dbm.ErrOutcomeUnknown) {
					t.Errorf("%s: err = %v matches ErrOutcomeUnknown: the statement was never run", what, err)
				}
			}
			if r := m.Stats().Retries - before; r != 0 {
				t.Errorf("%d retries of a call made wrongly, want none", r)
			}
		})
	}
	if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl); err != nil || n != 0 {
		t.Errorf("after the mistakes: %d rows, %v; want none", n, err)
	}
	assertIdle(t, m)
}

// testTimedOutBeforeSent: a write whose deadline has passed before it
// could be sent fails with ErrTimeout, and not with ErrOutcomeUnknown: it
// cannot have taken effect, and it did not. The message does not repeat the
// class ("timeout: ...: timeout: ...").
func testTimedOutBeforeSent(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := table(t, m, tg, "late", "id "+tg.Dialect.BigInt+" PRIMARY KEY")
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id) VALUES (?)", 1)
	if !errors.Is(err, dbm.ErrTimeout) || errors.Is(err, dbm.ErrOutcomeUnknown) {
		t.Errorf("err = %v, want ErrTimeout and not ErrOutcomeUnknown", err)
	}
	if err != nil && strings.Count(err.Error(), "timeout: ") > 1 {
		t.Errorf("err = %q repeats itself", err)
	}
	if n, err := dbm.One[int64](context.Background(), m, "SELECT count(*) FROM "+tbl); err != nil || n != 0 {
		t.Errorf("%d rows, %v; want none", n, err)
	}
	assertIdle(t, m)
}
