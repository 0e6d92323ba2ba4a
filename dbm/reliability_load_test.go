package dbm_test

// The mixed workload of the fault tests (killed backends, server restarts):
// workers write rows with keys of their own, through Exec and through
// WithTx, and read them back through ExecuteQuery, Get and Select, checking
// every read against what the manager told them about their writes.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// reliabilityDurationEnv sets how long the fault tests keep their load
// running (a Go duration, such as 30s), for longer runs by hand.
const reliabilityDurationEnv = "DBM_RELIABILITY_DURATION"

// reliabilityDuration returns $DBM_RELIABILITY_DURATION, or def.
func reliabilityDuration(t *testing.T, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(reliabilityDurationEnv)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 30s", reliabilityDurationEnv, v)
	}
	return d
}

// managerPaths are the two ways the manager bounds the wait for a
// connection: by the caller's context only, and by AcquireTimeout. Reads
// and BEGIN run on the pool on both (database/sql replaces broken
// connections for them, and retries them), after their turn in the
// manager's queue; writes run on connections of their own (database/sql
// does neither: the manager must).
var managerPaths = []struct {
	name    string
	acquire time.Duration
}{{"pool path", 0}, {"connections of their own", 5 * time.Second}}

// newPostgresApp opens a manager on the shared server whose connections
// carry a unique application_name, returned, by which their backends can be
// found and terminated. edit, if not nil, changes the configuration first.
// The manager is closed when the test ends.
func newPostgresApp(t *testing.T, prefix string, edit func(*dbm.Config)) (*dbm.Manager, string) {
	t.Helper()
	app := prefix + pgRandom(4)
	cfg := postgresConfig(t)
	cfg.Params = map[string]string{"application_name": app}
	if edit != nil {
		edit(&cfg)
	}
	m, err := dbm.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, app
}

// opTimeout bounds each operation of the load: an operation that hangs
// fails the test (with ErrTimeout, an unexpected class) instead of blocking
// it.
const opTimeout = 20 * time.Second

// maxLoadErrors is how many violations the load reports before it stops
// repeating itself.
const maxLoadErrors = 20

// faultLoad runs workers against m. Each worker writes rows with keys of its
// own (key = base + worker*keySpan + seq) into rows, a table without a key,
// so that a write that ran twice shows as two rows: through Exec
// (v = 'exec'), and through WithTx (v = 'tx'), which in the same transaction
// adds one to the worker's row in counters. Its reads check that every
// acknowledged write is there, that no write is there twice, that nothing
// is there the manager said did not take effect, and that the counter
// matches the transactions' rows (none half applied).
type faultLoad struct {
	t        *testing.T
	m        *dbm.Manager
	rows     string // (id, v): one row per write
	counters string // (id, v): per worker, v = committed 'tx' rows, as text
	base     int
	// readsMayFail: a failed read is reported as an error unless this is set
	// and the read began before the manager's recovery (see recovered); a
	// read that may fail must still fail with ErrConnection.
	readsMayFail bool
	upSince      atomic.Int64 // unix nanoseconds; see serverUp
	lastOK       atomic.Int64 // unix nanoseconds of the last statement that succeeded
	errors       atomic.Int32

	workers  []*faultWorker
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	outage   atomic.Pointer[faultOutage]
}

// keySpan is the range of keys each worker owns.
const keySpan = 1_000_000

type faultWorker struct {
	id     int
	lo, hi int           // keys [lo, hi)
	warm   chan struct{} // closed when the worker has had its first writes acknowledged
	// Written by the worker only; read by the test after halt.
	warmed   bool
	next     int
	acked    map[int]string // key -> how it was written, for acknowledged writes
	unknown  map[int]string // key -> how, for writes whose outcome is unknown
	refused  map[int]string // key -> how, for writes that failed without ErrOutcomeUnknown: not applied
	reads    int
	writes   int
	failures map[string]int // "op: class" -> count
	// the last outage in which this worker had a failed write, a success,
	// and an acknowledged write
	seenFail, seenOK, seenWrite *faultOutage
}

// faultOutage records how the load went through the server's absence: when
// every worker has had a write fail, and when the manager works again (the
// first successful statement of any worker, and the time when every worker
// has had a write acknowledged).
type faultOutage struct {
	unfailed  atomic.Int32 // workers without a failed write yet
	failDone  chan struct{}
	first     atomic.Int64 // unix nanoseconds of the first success
	firstDone chan struct{}
	remaining atomic.Int32 // workers without an acknowledged write yet
	allDone   chan struct{}
	all       atomic.Int64 // unix nanoseconds when remaining reached 0
}

// newFaultLoad creates the tables with admin (which may be m), and the
// workers' counter rows, but starts nothing.
func newFaultLoad(t *testing.T, m, admin *dbm.Manager, workers, base int) *faultLoad {
	t.Helper()
	l := &faultLoad{t: t, m: m, rows: pgRetryTable(t, admin), counters: pgRetryTable(t, admin), base: base, stop: make(chan struct{})}
	for i := range workers {
		w := &faultWorker{id: i, lo: base + i*keySpan, warm: make(chan struct{}),
			acked: map[int]string{}, unknown: map[int]string{}, refused: map[int]string{}, failures: map[string]int{}}
		w.hi = w.lo + keySpan
		l.workers = append(l.workers, w)
		if _, err := admin.Exec(t.Context(), "INSERT INTO "+l.counters+" (id, v) VALUES ($1, '0')", w.lo); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// start starts the workers; warmWrites is how many acknowledged writes make
// a worker's warm channel close.
func (l *faultLoad) start(warmWrites int) {
	for _, w := range l.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.work(w, warmWrites)
		}()
	}
}

// waitWarm waits until every worker has had warmWrites writes acknowledged.
func (l *faultLoad) waitWarm(t *testing.T, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for _, w := range l.workers {
		select {
		case <-w.warm:
		case <-timeout:
			t.Fatalf("worker %d did not get its first writes acknowledged within %s", w.id, within)
		}
	}
}

// halt stops the workers and waits for them. It may be called again.
func (l *faultLoad) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// serverDown tells the load that the server is gone from now on: the next
// successes are the manager's recovery.
func (l *faultLoad) serverDown() *faultOutage {
	o := &faultOutage{failDone: make(chan struct{}), firstDone: make(chan struct{}), allDone: make(chan struct{})}
	o.unfailed.Store(int32(len(l.workers)))
	o.remaining.Store(int32(len(l.workers)))
	l.outage.Store(o)
	return o
}

// serverUp tells the load that the server accepts connections again.
func (l *faultLoad) serverUp() { l.upSince.Store(time.Now().UnixNano()) }

// recovered reports whether the server is up again (serverUp) and a
// statement has succeeded since: from then on every read must succeed,
// whatever the pool still holds. Between the two a read may still fail
// fast with ErrConnection: the manager learns that the server is back from
// its next probe, and a read whose probe has not yet connected when its
// wait of a few milliseconds ends fails as while the server was down (on
// a loaded machine that probe can take longer than the wait; the issue's
// bound is traffic back within one probe interval, which restartUnderLoad
// checks with the first success).
func (l *faultLoad) recovered() bool {
	up := l.upSince.Load()
	return up != 0 && l.lastOK.Load() > up
}

func (l *faultLoad) errorf(format string, args ...any) {
	if n := l.errors.Add(1); n <= maxLoadErrors {
		l.t.Errorf(format, args...)
	} else if n == maxLoadErrors+1 {
		l.t.Error("more violations; not reported")
	}
}

// work runs worker w's cycle until stop: a write through Exec, a read
// through ExecuteQuery, a write through WithTx, a read through Get, a read
// through Select.
func (l *faultLoad) work(w *faultWorker, warmWrites int) {
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		up := l.recovered() // the manager is known to be back since before this operation
		var err error
		switch i % 5 {
		case 0:
			err = l.write(ctx, w, "exec")
		case 1:
			err = l.readAll(ctx, w, up)
		case 2:
			err = l.write(ctx, w, "tx")
		case 3:
			err = l.readCounter(ctx, w, up)
		case 4:
			err = l.readIDs(ctx, w, up)
		}
		cancel()
		write := i%5 == 0 || i%5 == 2
		if err == nil {
			l.lastOK.Store(time.Now().UnixNano())
			l.succeeded(w, write)
		} else if write {
			l.writeFailed(w)
		}
		if !w.warmed && len(w.acked) >= warmWrites {
			w.warmed = true
			close(w.warm)
		}
	}
}

// writeFailed records a failed write for the outage under way, if any.
func (l *faultLoad) writeFailed(w *faultWorker) {
	if o := l.outage.Load(); o != nil && w.seenFail != o {
		w.seenFail = o
		if o.unfailed.Add(-1) == 0 {
			close(o.failDone)
		}
	}
}

// succeeded records a success for the outage under way, if any.
func (l *faultLoad) succeeded(w *faultWorker, write bool) {
	o := l.outage.Load()
	if o == nil {
		return
	}
	now := time.Now().UnixNano()
	if w.seenOK != o {
		w.seenOK = o
		if o.first.CompareAndSwap(0, now) {
			close(o.firstDone)
		}
	}
	if write && w.seenWrite != o {
		w.seenWrite = o
		if o.remaining.Add(-1) == 0 {
			o.all.Store(now)
			close(o.allDone)
		}
	}
}

// write writes the worker's next key through Exec or WithTx and records
// what the manager said.
func (l *faultLoad) write(ctx context.Context, w *faultWorker, how string) error {
	key := w.lo + w.next
	w.next++
	w.writes++
	var err error
	if how == "exec" {
		_, err = l.m.Exec(ctx, "INSERT INTO "+l.rows+" (id, v) VALUES ($1, 'exec')", key)
	} else {
		err = l.m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO "+l.rows+" (id, v) VALUES ($1, 'tx')", key); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE "+l.counters+" SET v = (v::int + 1)::text WHERE id = $1", w.lo)
			return err
		})
	}
	switch {
	case err == nil:
		w.acked[key] = how
	case errors.Is(err, dbm.ErrOutcomeUnknown):
		w.unknown[key] = how
	default:
		w.refused[key] = how
	}
	if err != nil {
		w.failures[failureKind("write "+how, err)]++
		if !errors.Is(err, dbm.ErrConnection) {
			l.errorf("worker %d: write %d through %s: %v; want an error matching ErrConnection or ErrOutcomeUnknown", w.id, key, how, err)
		}
	}
	return err
}

// failureKind names a failure for the report: the operation, the class, and
// whether the outcome is unknown.
func failureKind(op string, err error) string {
	s := op + ": " + dbm.Classify(err).String()
	if errors.Is(err, dbm.ErrOutcomeUnknown) {
		s += " (outcome unknown)"
	}
	return s
}

// readFailed records a read's outcome; it reports whether the read failed.
// up tells that the server was up when the read began.
func (l *faultLoad) readFailed(w *faultWorker, how string, up bool, err error) bool {
	w.reads++
	if err == nil {
		return false
	}
	w.failures[failureKind("read "+how, err)]++
	switch {
	case !l.readsMayFail:
		l.errorf("worker %d: read through %s failed: %v", w.id, how, err)
	case up:
		l.errorf("worker %d: read through %s, begun after the server accepted logins again and a statement succeeded, failed: %v", w.id, how, err)
	case !errors.Is(err, dbm.ErrConnection):
		l.errorf("worker %d: read through %s: %v; want an error matching ErrConnection", w.id, how, err)
	}
	return true
}

type faultRow struct {
	ID int    `db:"id"`
	V  string `db:"v"`
}

func (l *faultLoad) readAll(ctx context.Context, w *faultWorker, up bool) error {
	var rows []faultRow
	err := l.m.ExecuteQuery(ctx, &rows, "SELECT id, v FROM "+l.rows+" WHERE id >= $1 AND id < $2", w.lo, w.hi)
	if l.readFailed(w, "ExecuteQuery", up, err) {
		return err
	}
	for _, p := range l.checkRows(w, rows) {
		l.errorf("worker %d, ExecuteQuery: %s", w.id, p)
	}
	return nil
}

func (l *faultLoad) readIDs(ctx context.Context, w *faultWorker, up bool) error {
	ids, err := dbm.Select[int](ctx, l.m, "SELECT id FROM "+l.rows+" WHERE id >= $1 AND id < $2", w.lo, w.hi)
	if l.readFailed(w, "Select", up, err) {
		return err
	}
	rows := make([]faultRow, len(ids))
	for i, id := range ids {
		rows[i].ID = id
	}
	for _, p := range l.checkRows(w, rows) {
		l.errorf("worker %d, Select: %s", w.id, p)
	}
	return nil
}

// readCounter reads, in one statement (one snapshot), how many 'tx' rows
// the worker has and its counter: each transaction wrote both or neither.
func (l *faultLoad) readCounter(ctx context.Context, w *faultWorker, up bool) error {
	var got struct {
		Rows    int `db:"rows"`
		Counter int `db:"counter"`
	}
	err := l.m.Get(ctx, &got, "SELECT (SELECT count(*) FROM "+l.rows+" WHERE id >= $1 AND id < $2 AND v = 'tx') AS rows, "+
		"(SELECT v::int FROM "+l.counters+" WHERE id = $1) AS counter", w.lo, w.hi)
	if l.readFailed(w, "Get", up, err) {
		return err
	}
	if got.Rows != got.Counter {
		l.errorf("worker %d, Get: %d rows written through WithTx but the counter their transactions updated says %d", w.id, got.Rows, got.Counter)
	}
	acked, unknown := countVia(w.acked, "tx"), countVia(w.unknown, "tx")
	if got.Rows < acked || got.Rows > acked+unknown {
		l.errorf("worker %d, Get: %d rows written through WithTx; %d were acknowledged and %d have an unknown outcome", w.id, got.Rows, acked, unknown)
	}
	return nil
}

func countVia(keys map[int]string, how string) int {
	n := 0
	for _, v := range keys {
		if v == how {
			n++
		}
	}
	return n
}

// checkRows checks what a worker read (rows with V empty: ids only) against
// its writes and returns the violations.
func (l *faultLoad) checkRows(w *faultWorker, rows []faultRow) []string {
	var problems []string
	seen := make(map[int]int, len(rows))
	for _, r := range rows {
		seen[r.ID]++
		how, acked := w.acked[r.ID]
		if !acked {
			how = w.unknown[r.ID]
		}
		switch {
		case seen[r.ID] == 2:
			problems = append(problems, fmt.Sprintf("key %d written more than once", r.ID))
		case how == "" && w.refused[r.ID] != "":
			problems = append(problems, fmt.Sprintf("key %d is there, but its write through %s failed with an error that did not say its outcome was unknown", r.ID, w.refused[r.ID]))
		case how == "":
			problems = append(problems, fmt.Sprintf("key %d is there, but was never written", r.ID))
		case r.V != "" && r.V != how:
			problems = append(problems, fmt.Sprintf("key %d has v = %q, want %q", r.ID, r.V, how))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(w.acked)) {
		if seen[key] == 0 {
			problems = append(problems, fmt.Sprintf("acknowledged write %d (through %s) is missing", key, w.acked[key]))
		}
	}
	return problems
}

// verify checks the tables through admin after the load stopped: the same
// checks as the reads, over every worker, and the counters. It returns how
// many of the writes whose outcome was unknown had taken effect.
func (l *faultLoad) verify(t *testing.T, admin *dbm.Manager) (unknownApplied int) {
	t.Helper()
	for _, w := range l.workers {
		var rows []faultRow
		if err := admin.ExecuteQuery(t.Context(), &rows, "SELECT id, v FROM "+l.rows+" WHERE id >= $1 AND id < $2", w.lo, w.hi); err != nil {
			t.Fatal(err)
		}
		for _, p := range l.checkRows(w, rows) {
			l.errorf("worker %d, after the load: %s", w.id, p)
		}
		counter, err := dbm.One[int](t.Context(), admin, "SELECT v::int FROM "+l.counters+" WHERE id = $1", w.lo)
		if err != nil {
			t.Fatal(err)
		}
		found := rowsVia(rows)
		if tx := countVia(found, "tx"); counter != tx {
			t.Errorf("worker %d, after the load: %d rows written through WithTx, counter %d", w.id, tx, counter)
		}
		for key := range w.unknown {
			if found[key] != "" {
				unknownApplied++
			}
		}
	}
	return unknownApplied
}

func rowsVia(rows []faultRow) map[int]string {
	m := make(map[int]string, len(rows))
	for _, r := range rows {
		m[r.ID] = r.V
	}
	return m
}

// faultReport sums the workers' figures after the load stopped.
type faultReport struct {
	reads, writes, acked, unknown, refused int
	failures                               map[string]int
}

func (l *faultLoad) report() faultReport {
	r := faultReport{failures: map[string]int{}}
	for _, w := range l.workers {
		r.reads += w.reads
		r.writes += w.writes
		r.acked += len(w.acked)
		r.unknown += len(w.unknown)
		r.refused += len(w.refused)
		for k, n := range w.failures {
			r.failures[k] += n
		}
	}
	return r
}

func (r faultReport) String() string {
	var f []string
	for _, k := range slices.Sorted(maps.Keys(r.failures)) {
		f = append(f, fmt.Sprintf("%s %d", k, r.failures[k]))
	}
	if len(f) == 0 {
		f = []string{"none"}
	}
	return fmt.Sprintf("reads %d, writes %d (acknowledged %d, outcome unknown %d, not applied %d); failures: %s",
		r.reads, r.writes, r.acked, r.unknown, r.refused, strings.Join(f, ", "))
}

// statsLine is the part of Stats the reports show: what the manager did
// between before and after (before: the zero Stats for a new manager).
func statsLine(before, after dbm.Stats) string {
	errs := map[string]uint64{}
	for k, n := range after.ErrorsByClass {
		if d := n - before.ErrorsByClass[k]; d > 0 {
			errs[k] = d
		}
	}
	return fmt.Sprintf("manager: retries %d, transactions %d (commits %d, rollbacks %d), failed attempts by class %v, in use %d",
		after.Retries-before.Retries, after.Transactions-before.Transactions, after.Commits-before.Commits,
		after.Rollbacks-before.Rollbacks, errs, after.InUse)
}
