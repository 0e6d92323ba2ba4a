package dbmprom_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	_ "modernc.org/sqlite"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmprom"
)

// busyManager returns a SQLite manager that has run a known set of
// operations: 4 statements (one failing with a unique violation), one
// committed and one rolled back transaction.
func busyManager(t *testing.T) *dbm.Manager {
	t.Helper()
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	mustExec := func(q string) {
		t.Helper()
		if _, err := m.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("CREATE TABLE u (name TEXT PRIMARY KEY)")
	mustExec("INSERT INTO u VALUES ('ada')")
	if _, err := m.Exec(ctx, "INSERT INTO u VALUES ('ada')"); !errors.Is(err, dbm.ErrUniqueViolation) {
		t.Fatalf("want a unique violation, got %v", err)
	}
	if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM u")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return errors.New("no") })
	return m
}

func TestCollectorReportsStats(t *testing.T) {
	m := busyManager(t)
	c := dbmprom.NewCollector(m)
	want := `
# HELP dbm_commits_total Total number of transactions committed.
# TYPE dbm_commits_total counter
dbm_commits_total 1
# HELP dbm_errors_total Total number of failed operations, by error class (see dbm.Class).
# TYPE dbm_errors_total counter
dbm_errors_total{class="unique_violation"} 1
# HELP dbm_pool_in_use_connections Number of connections currently in use.
# TYPE dbm_pool_in_use_connections gauge
dbm_pool_in_use_connections 0
# HELP dbm_pool_max_open_connections Maximum number of open connections to the database (Config.MaxOpenConns).
# TYPE dbm_pool_max_open_connections gauge
dbm_pool_max_open_connections 3
# HELP dbm_rollbacks_total Total number of transactions rolled back, by the caller or by WithTx.
# TYPE dbm_rollbacks_total counter
dbm_rollbacks_total 1
# HELP dbm_slow_statements_total Total number of statements that took at least Config.SlowQueryThreshold.
# TYPE dbm_slow_statements_total counter
dbm_slow_statements_total 0
# HELP dbm_statements_total Total number of statements run, successful or not.
# TYPE dbm_statements_total counter
dbm_statements_total 4
# HELP dbm_transactions_total Total number of transactions begun.
# TYPE dbm_transactions_total counter
dbm_transactions_total 2
`
	names := []string{"dbm_commits_total", "dbm_errors_total", "dbm_pool_in_use_connections", "dbm_pool_max_open_connections",
		"dbm_rollbacks_total", "dbm_slow_statements_total", "dbm_statements_total", "dbm_transactions_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Every number of the pool is there, under its conventional name.
	if n := testutil.CollectAndCount(c); n != 29 {
		t.Errorf("%d series, want 29: 24 metrics, the wait histogram, one error class and three lost-commit outcomes", n)
	}
	lost := `
# HELP dbm_lost_commits_total Total number of COMMITs whose reply was lost, by what the server said when asked (PostgreSQL).
# TYPE dbm_lost_commits_total counter
dbm_lost_commits_total{outcome="committed"} 0
dbm_lost_commits_total{outcome="rolled_back"} 0
dbm_lost_commits_total{outcome="unknown"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(lost), "dbm_lost_commits_total"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorScrapedOverHTTP(t *testing.T) {
	m := busyManager(t)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(dbmprom.NewCollector(m, dbmprom.WithNamespace("app_db"), dbmprom.WithConstLabels(prometheus.Labels{"db": "primary"}))); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v\n%s", res.StatusCode, err, body)
	}
	for _, want := range []string{
		`app_db_statements_total{db="primary"} 4`,
		`app_db_errors_total{class="unique_violation",db="primary"} 1`,
		`app_db_pool_wait_seconds_total{db="primary"} 0`,
		`app_db_pool_open_connections{db="primary"} `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "dbm_") {
		t.Errorf("the default namespace leaked through WithNamespace:\n%s", body)
	}
}

func TestCollectorCountsGrowBetweenScrapes(t *testing.T) {
	m := busyManager(t)
	c := dbmprom.NewCollector(m)
	if _, err := m.Exec(context.Background(), "SELECT * FROM missing_table"); err == nil {
		t.Fatal("want an error")
	}
	want := `
# HELP dbm_errors_total Total number of failed operations, by error class (see dbm.Class).
# TYPE dbm_errors_total counter
dbm_errors_total{class="undefined_object"} 1
dbm_errors_total{class="unique_violation"} 1
# HELP dbm_statements_total Total number of statements run, successful or not.
# TYPE dbm_statements_total counter
dbm_statements_total 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "dbm_errors_total", "dbm_statements_total"); err != nil {
		t.Error(err)
	}
}

// TestCollectorReportsRetriesAndLeaks makes a retry and a reclaimed leak
// happen and finds each under its own name.
func TestCollectorReportsRetriesAndLeaks(t *testing.T) {
	m := busyManager(t)
	ctx := context.Background()
	tries := 0
	if err := m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error {
		if tries++; tries == 1 {
			return &dbm.Error{Class: dbm.ClassSerialization, Err: errors.New("could not serialize access")}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	func() {
		if _, err := m.Query(ctx, "SELECT name FROM u"); err != nil { // dropped without Close
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for m.Stats().LeaksReclaimed == 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	want := `
# HELP dbm_leak_collections_total Total number of garbage collections forced because a caller waited for a connection while rows or transactions were open.
# TYPE dbm_leak_collections_total counter
dbm_leak_collections_total 0
# HELP dbm_leaks_reclaimed_total Total number of rows and transactions dropped without being closed and closed by the garbage collector's cleanup.
# TYPE dbm_leaks_reclaimed_total counter
dbm_leaks_reclaimed_total 1
# HELP dbm_retries_total Total number of statements and WithTx functions run again after a retryable error.
# TYPE dbm_retries_total counter
dbm_retries_total 1
`
	if err := testutil.CollectAndCompare(dbmprom.NewCollector(m), strings.NewReader(want), "dbm_leak_collections_total", "dbm_leaks_reclaimed_total", "dbm_retries_total"); err != nil {
		t.Error(err)
	}
}

func TestNilManagerFailsTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(dbmprom.NewCollector(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "nil *dbm.Manager") {
		t.Errorf("Gather = %v, want the nil manager error", err)
	}
}

// TestCollectorReportsQueueAndWaits: a caller waiting for the one
// connection shows in dbm_pool_queue_length while it waits, and its wait in
// dbm_acquire_wait_seconds and dbm_pool_waits_total once served; the
// database is up (dbm_probe_down 0).
func TestCollectorReportsQueueAndWaits(t *testing.T) {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	c := dbmprom.NewCollector(m)
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var n int
		done <- m.Get(ctx, &n, "SELECT 1")
	}()
	for m.Stats().QueueLength != 1 {
		time.Sleep(time.Millisecond)
	}
	want := `
# HELP dbm_pool_queue_length Number of callers waiting now for their turn at a connection in the manager's fair queue.
# TYPE dbm_pool_queue_length gauge
dbm_pool_queue_length 1
# HELP dbm_probe_down 1 while the database is marked down: calls fail fast and one probe at a time checks it; 0 otherwise.
# TYPE dbm_probe_down gauge
dbm_probe_down 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "dbm_pool_queue_length", "dbm_probe_down"); err != nil {
		t.Error(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		switch mf.GetName() {
		case "dbm_acquire_wait_seconds":
			found = true
			h := mf.GetMetric()[0].GetHistogram()
			// BeginTx, the waiting Get, and New's own statements, if any.
			if h.GetSampleCount() < 2 || h.GetSampleSum() <= 0 {
				t.Errorf("acquire histogram: count %d, sum %g; want the wait counted", h.GetSampleCount(), h.GetSampleSum())
			}
		case "dbm_pool_waits_total":
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 1 {
				t.Errorf("dbm_pool_waits_total = %g, want 1 (the wait in the queue)", v)
			}
		}
	}
	if !found {
		t.Error("no dbm_acquire_wait_seconds histogram")
	}
}
