package drivertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// pgx keeps a prepared statement per connection and statement text. After
// DDL changes the type of a column a cached statement returns, the server
// refuses to run it ("cached plan must not change result type", 0A000);
// pgx then forgets the statement. The error is the server's: the statement's
// implicit transaction was rolled back, nothing of it took effect, so the
// manager runs it once more, read or write. A write is not doubled.
func TestPgxCachedPlanAfterDDL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := openPgx(t, ctx, 1)
	table := fmt.Sprintf("dbm_cachedplan_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := m.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, x int NOT NULL, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer m.Exec(context.Background(), "DROP TABLE "+table)
	if _, err := m.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 7, 0)"); err != nil {
		t.Fatal(err)
	}
	read := "SELECT x FROM " + table + " WHERE id = $1"
	write := "UPDATE " + table + " SET n = n + 1 WHERE id = $1 RETURNING x"
	for _, q := range []string{read, write} { // cache both statements on the one connection
		if _, err := dbm.One[string](ctx, m, q, 1); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := m.Exec(ctx, "ALTER TABLE "+table+" ALTER COLUMN x TYPE text"); err != nil {
		t.Fatal(err)
	}
	before := m.Stats().Retries
	for _, q := range []string{read, write} {
		if x, err := dbm.One[string](ctx, m, q, 1); err != nil || x != "7" {
			t.Errorf("%s after ALTER TABLE ... TYPE: %q, %v; want \"7\" (retried once)", q, x, err)
		}
	}
	if got := m.Stats().Retries - before; got != 2 {
		t.Errorf("Stats().Retries grew by %d, want 2 (one per statement)", got)
	}
	if n, err := dbm.One[int](ctx, m, "SELECT n FROM "+table+" WHERE id = 1"); err != nil || n != 2 {
		t.Errorf("n = %d, %v; want 2: the write ran once before the DDL and once after", n, err)
	}

	// In a transaction the failed statement aborted it: WithTx runs fn again.
	if _, err := m.Exec(ctx, "ALTER TABLE "+table+" ALTER COLUMN x TYPE int USING x::int"); err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		runs++
		_, err := dbm.One[string](ctx, tx, write, 1)
		return err
	})
	var e *dbm.Error
	if err != nil || runs != 2 {
		t.Errorf("WithTx after ALTER TABLE ... TYPE: runs = %d, err = %v (%v); want 2 runs and success", runs, err, errors.As(err, &e))
	}
	if n, err := dbm.One[int](ctx, m, "SELECT n FROM "+table+" WHERE id = 1"); err != nil || n != 3 {
		t.Errorf("n = %d, %v; want 3: the rerun transaction's write once", n, err)
	}
}
