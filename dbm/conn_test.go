package dbm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// A read on a Conn whose connection broke is not retried, nor moved to
// another connection: the session it ran in is gone, and its state with it.
// The manager's own reads go on.
func TestConnNotRetriedWhenItsConnectionBroke(t *testing.T) {
	m := newPostgres(t)
	ctx := context.Background()
	c, err := m.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Exec(ctx, "SET application_name = 'dbm_conn_broken'"); err != nil {
		t.Fatal(err)
	}
	var pid int64
	if err := c.Get(ctx, &pid, "SELECT pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	// Ends the Conn's own backend (made by this test), waiting up to 30s for it to go.
	var ended bool
	if err := m.Get(ctx, &ended, "SELECT pg_terminate_backend($1, 30000)", pid); err != nil || !ended {
		t.Fatalf("pg_terminate_backend: %v, %v", ended, err)
	}
	before := m.Stats().Retries
	var name string
	err = c.Get(ctx, &name, "SELECT current_setting('application_name')")
	if !errors.Is(err, dbm.ErrConnection) {
		t.Errorf("a read on the Conn whose backend was terminated: %q, %v; want an error matching ErrConnection", name, err)
	}
	if got := m.Stats().Retries; got != before {
		t.Errorf("Stats().Retries went from %d to %d: a statement on a Conn was retried", before, got)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close of the broken Conn: %v", err)
	}
	if err := m.Get(ctx, &name, "SELECT 'pool works'"); err != nil {
		t.Errorf("the manager after the Conn broke: %v", err)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after Close", s.InUse)
	}
}
