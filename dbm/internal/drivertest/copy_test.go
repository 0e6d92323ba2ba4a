package drivertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
)

// pgx without package dbm/dbmpgx (this test binary imports pgx's stdlib
// only): Tx.CopyFrom loads with multi-row INSERTs numbered $1..$n, each
// under PostgreSQL's 65535 parameters, and table may name its schema.
func TestCopyFromPgxWithoutDbmpgx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := openPgx(t, ctx, 2)
	schema := fmt.Sprintf("dbm_copy_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := m.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer m.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	// A statement-level trigger logs the start of each statement that
	// inserts into c.
	for _, q := range []string{
		"CREATE TABLE " + schema + ".c (a BIGINT, b BIGINT, c BIGINT, d BIGINT)",
		"CREATE TABLE " + schema + ".log (q TEXT)",
		"CREATE FUNCTION " + schema + ".logq() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + schema +
			".log VALUES (left(current_query(), 200)); RETURN NULL; END $$",
		"CREATE TRIGGER logq AFTER INSERT ON " + schema + ".c FOR EACH STATEMENT EXECUTE FUNCTION " + schema + ".logq()",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// 20000 rows of 4 columns: 80000 parameters, two INSERTs.
	rows := make([][]any, 20000)
	for i := range rows {
		rows[i] = []any{int64(i), int64(i), nil, int64(-i)}
	}
	before := m.Stats().Statements
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		n, err := tx.CopyFrom(ctx, schema+".c", []string{"a", "b", "c", "d"}, dbm.CopyRows(rows))
		if err == nil && n != int64(len(rows)) {
			t.Errorf("CopyFrom = %d, want %d", n, len(rows))
		}
		return err
	})
	if err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	if got := m.Stats().Statements - before; got != 2+2 {
		t.Errorf("%d statements for 20000 rows of 4 columns, want 2 INSERTs + SAVEPOINT + RELEASE", got)
	}
	if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+schema+".c WHERE c IS NULL"); err != nil || n != int64(len(rows)) {
		t.Errorf("count = %d, %v; want %d", n, err, len(rows))
	}
	log, err := dbm.Select[string](ctx, m, "SELECT q FROM "+schema+".log")
	if err != nil || len(log) != 2 {
		t.Fatalf("the server saw %d statements inserting into c (%v), want 2", len(log), err)
	}
	for _, q := range log {
		if !strings.HasPrefix(q, `INSERT INTO "`+schema+`"."c" ("a", "b", "c", "d") VALUES ($1,$2,$3,$4),($5,`) {
			t.Errorf("loaded by %.80q; want a multi-row INSERT with $n placeholders", q)
		}
	}
}

// openPgx opens a manager with the pgx driver on the test server, with at
// most maxConns connections, closed when the test ends.
func openPgx(t *testing.T, ctx context.Context, maxConns int) *dbm.Manager {
	t.Helper()
	host, port := conformance.PostgresAddr(t)
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverPgx, Host: host, Port: port, User: "postgres", Database: "test",
		SSLMode: "disable", MaxOpenConns: maxConns})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}
