package dbm_test

import (
	"context"
	"testing"
	"time"
)

// TestPostgresLeakedRowsGiveBackTheConnection: with a pool of one
// connection, rows dropped without Close would hold it forever; once the
// garbage collector finds them, the manager closes them and the next query
// gets the connection.
func TestPostgresLeakedRowsGiveBackTheConnection(t *testing.T) {
	m := pgOpen(t)
	m.DB().SetMaxOpenConns(1)
	rowsLine := dropRows(t, m, "SELECT generate_series(1, 100000)") // more than one network read
	if leaks := m.Leaks(); len(leaks) != 1 || leaks[0].Location != at(rowsLine) {
		t.Fatalf("Leaks() = %v, want the rows at %s", leaks, at(rowsLine))
	}
	m.SweepLeaksAt(time.Now().Add(time.Hour)) // what the background sweeper does after 50 ms
	gcUntil(t, "the dropped rows were not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var one int
	if err := m.Get(ctx, &one, "SELECT 1"); err != nil || one != 1 {
		t.Fatalf("query after reclaim: %d, %v (the connection was not given back)", one, err)
	}
	if s := m.Stats(); s.InUse != 0 || s.OpenConnections != 1 {
		t.Fatalf("InUse = %d, OpenConnections = %d; want 0 and 1", s.InUse, s.OpenConnections)
	}
}
