package dbmotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/lib/pq"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmotel"
)

// wrapMock returns a manager over sqlmock traced by s.
func (s *sink) wrapMock(t *testing.T) (*dbm.Manager, sqlmock.Sqlmock) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, dbm.DriverPostgres, dbm.WithTracer(s.tracer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("sqlmock: %v", err)
		}
		_ = m.Close()
	})
	return m, mock
}

// eventAttempts returns the dbm.attempt of each event called name.
func eventAttempts(sp sdktrace.ReadOnlySpan, name string) []string {
	var out []string
	for _, e := range sp.Events() {
		if e.Name == name {
			out = append(out, attrs(e.Attributes)[string(dbmotel.AttemptKey)])
		}
	}
	return out
}

// TestRetryIsAnEvent: a read retried after a deadlock is two spans, the
// first failed with error.type deadlock, the second with a dbm.retry event
// for attempt 2.
func TestRetryIsAnEvent(t *testing.T) {
	s := newSink(t, dbmotel.WithSystemName("postgresql"))
	m, mock := s.wrapMock(t)
	mock.ExpectQuery("SELECT n FROM t").WillReturnError(&pq.Error{Code: "40P01"})
	mock.ExpectQuery("SELECT n FROM t").WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
	var n int
	if err := m.Get(context.Background(), &n, "SELECT n FROM t"); err != nil {
		t.Fatal(err)
	}
	spans := s.ended("SELECT")
	if len(spans) != 2 {
		t.Fatalf("%d SELECT spans, want one per attempt", len(spans))
	}
	if got := attrs(spans[0].Attributes())["error.type"]; got != "deadlock" {
		t.Errorf("first attempt error.type = %q, want deadlock", got)
	}
	if got := eventAttempts(spans[0], dbmotel.RetryEvent); len(got) != 0 {
		t.Errorf("first attempt has retry events %v", got)
	}
	if got := eventAttempts(spans[1], dbmotel.RetryEvent); len(got) != 1 || got[0] != "2" {
		t.Errorf("second attempt retry events %v, want one for attempt 2", got)
	}
}

// TestWithTxRerunIsAnEvent: a WithTx function rerun after a serialization
// failure gives a second transaction span with a dbm.tx.rerun event.
func TestWithTxRerunIsAnEvent(t *testing.T) {
	s := newSink(t)
	m, mock := s.wrapMock(t)
	mock.ExpectBegin()
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnError(&pq.Error{Code: "40001"})
	mock.ExpectRollback()
	mock.ExpectBegin()
	mock.ExpectExec("UPDATE t SET n = 1").WillReturnResult(sqlmock.NewResult(0, 1))
	mock.ExpectCommit()
	if err := m.WithTx(context.Background(), nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE t SET n = 1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	txs := s.ended(dbmotel.TxSpan)
	if len(txs) != 2 {
		t.Fatalf("%d transaction spans, want 2", len(txs))
	}
	// The first run rolled back (successfully: the span's error is the
	// rollback's); its statement failed with serialization.
	if a := attrs(txs[0].Attributes()); a["dbm.tx.committed"] != "false" {
		t.Errorf("first transaction attributes %v, want not committed", a)
	}
	if ups := s.ended("UPDATE"); len(ups) != 2 || attrs(ups[0].Attributes())["error.type"] != "serialization" ||
		ups[0].Parent().SpanID() != txs[0].SpanContext().SpanID() {
		t.Errorf("want two UPDATE spans, the first failed with serialization under the first transaction")
	}
	if got := eventAttempts(txs[1], dbmotel.RerunEvent); len(got) != 1 || got[0] != "2" {
		t.Errorf("second transaction rerun events %v, want one for attempt 2", got)
	}
	if got := eventAttempts(txs[0], dbmotel.RerunEvent); len(got) != 0 {
		t.Errorf("first transaction has rerun events %v", got)
	}
}

// TestQueryTextOnlyWhenEnabled: db.query.text is off by default and, when
// on, holds the statement as sent with its placeholders.
func TestQueryTextOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := newSink(t, dbmotel.WithQueryText(on))
		m, mock := s.wrapMock(t)
		mock.ExpectQuery("SELECT n FROM t WHERE id = $1").WithArgs(7).WillReturnRows(sqlmock.NewRows([]string{"n"}).AddRow(1))
		var n int
		if err := m.Get(context.Background(), &n, "SELECT n FROM t WHERE id = ?", 7); err != nil {
			t.Fatal(err)
		}
		want := ""
		if on {
			want = "SELECT n FROM t WHERE id = $1"
		}
		wantAttrs(t, "SELECT", attrs(s.ended("SELECT")[0].Attributes()), map[string]string{"db.query.text": want})
	}
}

// holdPool opens a SQLite manager with one connection traced by s, and
// holds that connection in a transaction; the returned func releases it.
func holdPool(t *testing.T, s *sink, acquire time.Duration) (*dbm.Manager, func()) {
	t.Helper()
	m := s.open(t, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", MaxOpenConns: 1, AcquireTimeout: acquire})
	tx, err := m.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTimeouts: a wait for the pool that runs out (Config.AcquireTimeout)
// counts in db.client.connection.timeouts and fails its acquire span.
func TestTimeouts(t *testing.T) {
	s := newSink(t, dbmotel.WithPoolName("p1"))
	m, release := holdPool(t, s, 50*time.Millisecond)
	defer release()
	if err := m.Ping(context.Background()); !errors.Is(err, dbm.ErrPoolTimeout) {
		t.Fatalf("Ping on a held pool = %v, want ErrPoolTimeout", err)
	}
	timeouts := s.metric(t, "db.client.connection.timeouts")
	if tp := timeouts.Data.(metricdata.Sum[int64]).DataPoints; timeouts.Unit != "{timeout}" || len(tp) != 1 || tp[0].Value != 1 ||
		attrs(tp[0].Attributes.ToSlice())["db.client.connection.pool.name"] != "p1" {
		t.Errorf("timeouts = unit %q, points %+v; want {timeout}, 1 in pool p1", timeouts.Unit, tp)
	}
	acq := s.ended(dbmotel.AcquireSpan)
	if last := acq[len(acq)-1]; attrs(last.Attributes())["error.type"] != "pool_timeout" {
		t.Errorf("timed-out acquire span attributes %v", attrs(last.Attributes()))
	}
}

// TestAcquireSpanOnlyWhenWaited: a call that finds the pool's connection
// free gets no dbm.acquire span (its wait is still in wait_time); a call
// that waits for the connection another caller holds gets one, as a child
// of the span in its context, from when it began to wait until it had the
// connection.
func TestAcquireSpanOnlyWhenWaited(t *testing.T) {
	const hold = 20 * time.Millisecond
	s := newSink(t, dbmotel.WithPoolName("p1"))
	m, release := holdPool(t, s, time.Hour) // its BEGIN finds the connection free
	if acq := s.ended(dbmotel.AcquireSpan); len(acq) != 0 {
		t.Fatalf("%d acquire spans after a BEGIN on a free pool, want none", len(acq))
	}
	ctx, caller := s.tp.Tracer("test").Start(context.Background(), "caller")
	done := make(chan error, 1)
	go func() { done <- m.Ping(ctx) }()
	if !waitFor(func() bool { return pendingNow(t, s) == 1 }) {
		release()
		t.Fatal("the ping never waited")
	}
	time.Sleep(hold)
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(context.Background()); err != nil { // free again: no span
		t.Fatal(err)
	}
	caller.End()

	acq := s.ended(dbmotel.AcquireSpan)
	if len(acq) != 1 {
		t.Fatalf("%d acquire spans, want 1: the waiting ping's", len(acq))
	}
	sp := acq[0]
	if sp.Parent().SpanID() != caller.SpanContext().SpanID() || sp.SpanKind() != trace.SpanKindInternal {
		t.Errorf("acquire span: parent %v kind %v, want the caller's span %v, internal", sp.Parent().SpanID(), sp.SpanKind(), caller.SpanContext().SpanID())
	}
	wantAttrs(t, "acquire", attrs(sp.Attributes()), map[string]string{"db.client.connection.pool.name": "p1", "dbm.operation": "ping", "error.type": ""})
	if d := sp.EndTime().Sub(sp.StartTime()); d < hold {
		t.Errorf("acquire span lasts %v, want at least the %v the connection was held", d, hold)
	}
	wait := s.metric(t, "db.client.connection.wait_time").Data.(metricdata.Histogram[float64]).DataPoints
	if len(wait) != 1 || wait[0].Count != 3 {
		t.Errorf("wait_time points %+v, want 3 waits (BEGIN, the waiting ping, the free ping)", wait)
	}
}

// TestPendingRequests: a caller waiting for the pool's only connection
// counts in db.client.connection.pending_requests until it has one.
func TestPendingRequests(t *testing.T) {
	s := newSink(t)
	m, release := holdPool(t, s, time.Hour)
	done := make(chan error, 1)
	go func() { done <- m.Ping(context.Background()) }()
	if !waitFor(func() bool { return pendingNow(t, s) == 1 }) {
		release()
		t.Fatal("pending_requests never showed the waiting ping")
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := pendingNow(t, s); n != 0 {
		t.Errorf("pending_requests = %d after the wait, want 0", n)
	}
}

func pendingNow(t *testing.T, s *sink) int64 {
	dp := s.metric(t, "db.client.connection.pending_requests").Data.(metricdata.Sum[int64]).DataPoints
	if len(dp) != 1 {
		t.Fatalf("pending_requests points %+v", dp)
	}
	return dp[0].Value
}

// waitFor polls cond for up to a minute (the machine may be loaded).
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// TestUseTimeIsTheHold: db.client.connection.use_time records the time a
// connection was out of the pool: a transaction held open for 50ms and
// rows left open for 50ms each record at least that (a lower bound: a
// loaded machine only makes the hold longer), and nothing is recorded
// while they still hold their connection.
func TestUseTimeIsTheHold(t *testing.T) {
	const hold = 50 * time.Millisecond
	s := newSink(t, dbmotel.WithPoolName("p1"))
	m, release := holdPool(t, s, time.Hour)
	if n := useTimes(t, s); len(n) != 0 {
		t.Fatalf("use_time %v while the transaction holds the connection, want none", n)
	}
	time.Sleep(hold)
	release()
	ctx := dbm.NotIdempotent(context.Background()) // a connection of its own for the rows
	rows, err := m.Query(ctx, "SELECT 1 UNION ALL SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	if n := useTimes(t, s); len(n) != 1 {
		t.Fatalf("use_time %v while the rows hold the connection, want the transaction's only", n)
	}
	time.Sleep(hold)
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	dp := useTimes(t, s)
	if len(dp) != 1 || dp[0].Count != 2 {
		t.Fatalf("use_time points %+v, want one with 2 holds", dp)
	}
	if mn, ok := dp[0].Min.Value(); !ok || mn < hold.Seconds() {
		t.Errorf("use_time min %v s, want at least %v s (each hold)", mn, hold.Seconds())
	}
	if a := attrs(dp[0].Attributes.ToSlice()); a["db.client.connection.pool.name"] != "p1" || len(a) != 1 {
		t.Errorf("use_time attributes %v, want db.client.connection.pool.name p1 only", a)
	}
}

// useTimes returns the points of db.client.connection.use_time, none
// before the first release.
func useTimes(t *testing.T, s *sink) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	if m, ok := s.find(t, "db.client.connection.use_time"); ok {
		return m.Data.(metricdata.Histogram[float64]).DataPoints
	}
	return nil
}

// TestNoopTracerProviderMakesNoSpans: with OpenTelemetry's no-op
// TracerProvider the Tracer starts no span (it skips the work) but still
// records the metrics, and it leaves the caller's span alone: End must not
// end the span it finds in the context when Start made none.
func TestNoopTracerProviderMakesNoSpans(t *testing.T) {
	s := newSink(t, dbmotel.WithTracerProvider(tracenoop.NewTracerProvider()), dbmotel.WithPoolName("p1"))
	m := s.open(t, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", AcquireTimeout: time.Minute})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, caller := tp.Tracer("test").Start(context.Background(), "caller")
	var n int
	if err := m.Get(ctx, &n, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error { return tx.Get(ctx, &n, "SELECT 2") }); err != nil {
		t.Fatal(err)
	}
	if !caller.IsRecording() {
		t.Error("the caller's span was ended by the Tracer")
	}
	caller.End()
	if got := s.spans.Ended(); len(got) != 1 || got[0].Name() != "caller" {
		t.Errorf("%d spans ended, want only the caller's", len(got))
	}
	dur := s.metric(t, "db.client.operation.duration").Data.(metricdata.Histogram[float64]).DataPoints
	if len(dur) != 1 || dur[0].Count != 2 {
		t.Errorf("operation.duration points %+v, want 2 SELECTs", dur)
	}
	if up := useTimes(t, s); len(up) != 1 || up[0].Count != 2 {
		t.Errorf("use_time points %+v, want the Get's and the transaction's", up)
	}
}
