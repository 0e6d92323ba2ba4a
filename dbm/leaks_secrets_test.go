package dbm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// A statement that holds the password (an ALTER ROLE, a literal) never shows
// it in a leak report: not in Leaks(), not in Close's ErrLeaked with any
// verb, not in the threshold, reclaim or closed-at-last log lines.
func TestLeakReportsNeverShowThePassword(t *testing.T) {
	const secret = "Zq9-leak-secret"
	ctx := context.Background()
	logs := &logBuffer{}
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", Password: secret},
		dbm.WithLeakThreshold(time.Hour), dbm.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	query := "SELECT '" + secret + "' AS v"
	held, err := m.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	dropRows(t, m, query) // reclaimed below, with its WARN line
	// What the background sweeper does after 50 ms:
	m.SweepLeaksAt(time.Now().Add(time.Hour))
	gcUntil(t, "the dropped rows were not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 1 })
	m.CheckLeaksAt(time.Now().Add(2 * time.Hour)) // the threshold WARN for held

	leaks := m.Leaks()
	if len(leaks) != 1 || leaks[0].Query == "" {
		t.Fatalf("Leaks() = %v, want the held rows", leaks)
	}
	closeErr := m.Close()
	if closeErr == nil {
		t.Fatal("Close with open rows returned nil")
	}
	_ = held.Close() // the closed-at-last INFO line
	out := fmtAll(leaks) + fmtAll(leaks[0]) + fmtAll(closeErr) + logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("the password appears in a leak report:\n%s", out)
	}
	for _, want := range []string{"reclaimed by the garbage collector", "open longer than the leak threshold", "leaked rows closed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q (the test would not have seen the password there):\n%s", want, logs)
		}
	}
}
