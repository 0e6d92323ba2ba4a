package dbm_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// connectRecorder is a Tracer that also implements dbm.ConnectTracer.
type connectRecorder struct {
	recorder
	cmu      sync.Mutex
	connects []dbm.TraceResult
}

func (r *connectRecorder) TraceConnect(_ context.Context, res dbm.TraceResult) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.connects = append(r.connects, res)
}

func (r *connectRecorder) taken() []dbm.TraceResult {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return append([]dbm.TraceResult(nil), r.connects...)
}

// TestConnectTracerTimesNewConnections: each connection the pool opens is
// reported once, timed with the manager's clock, and the pool works as
// before.
func TestConnectTracerTimesNewConnections(t *testing.T) {
	clock := newFakeClock()
	clock.SetStep(7 * time.Millisecond)
	rec := &connectRecorder{}
	m := newSQLite(t, dbm.WithTracer(rec), dbm.WithClock(clock.Now))
	ctx := context.Background()
	if _, err := m.Exec(ctx, "CREATE TABLE t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := m.Get(ctx, &n, "SELECT n FROM t"); err != nil || n != 1 {
		t.Fatalf("Get = %d, %v", n, err)
	}
	got := rec.taken()
	if len(got) == 0 || int64(len(got)) > int64(m.Stats().OpenConnections)+m.Stats().MaxIdleClosed+m.Stats().MaxIdleTimeClosed+m.Stats().MaxLifetimeClosed {
		t.Fatalf("%d connects reported, pool stats %+v", len(got), m.Stats().DBStats)
	}
	for _, res := range got {
		if res.Err != nil || res.Duration != 7*time.Millisecond {
			t.Errorf("connect = %+v, want no error and the clock's 7ms step", res)
		}
	}
}

// TestConnectTracerSeesFailedConnections: a server that refuses is
// reported with the error and its class, through lib/pq's connector and
// the mysql driver's own (SQLite, above, has none: database/sql's way), and
// the password never shows.
func TestConnectTracerSeesFailedConnections(t *testing.T) {
	const pw = "Sekr1t-connect-pw"
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverMySQL} {
		t.Run(driver, func(t *testing.T) {
			rec := &connectRecorder{}
			cfg := dbm.Config{Driver: driver, Host: "127.0.0.1", Port: freePort(t), User: "u", Password: pw, Database: "d",
				SSLMode: "disable", ConnectTimeout: 300 * time.Millisecond}
			if driver == dbm.DriverMySQL {
				cfg.SSLMode = ""
			}
			_, err := dbm.New(context.Background(), cfg, dbm.WithTracer(rec))
			if err == nil {
				t.Fatal("New succeeded on a refused port")
			}
			got := rec.taken()
			if len(got) == 0 {
				t.Fatalf("no failed connect reported; New: %v", err)
			}
			for _, res := range got {
				// Refused, or on a loaded machine cut by the deadline first.
				if res.Err == nil || res.Class != dbm.ClassConnection && res.Class != dbm.ClassTimeout {
					t.Errorf("connect = %+v, want a connection error (or a timeout)", res)
				}
				if strings.Contains(fmtAll(res.Err), pw) {
					t.Errorf("connect error shows the password: %v", res.Err)
				}
			}
		})
	}
}
