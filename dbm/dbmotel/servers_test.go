package dbmotel_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmotel"
	"github.com/dbmanager-go/dbmanager/dbm/internal/conformance"
)

// target is a server the tests run against.
type target struct {
	name   string
	system string // the db.system.name wanted
	config func(t *testing.T) dbm.Config
	opts   []dbmotel.Option
	code   string // the error code of a syntax error; "" when none is checked
}

func postgres(driver string) target {
	return target{name: driver, system: "postgresql", code: "42601", config: func(t *testing.T) dbm.Config {
		host, port := conformance.PostgresAddr(t)
		return dbm.Config{Driver: driver, Host: host, Port: port, User: "postgres", Database: "test", SSLMode: "disable",
			Params: map[string]string{"application_name": "dbmotel_test"}}
	}}
}

var targets = []target{
	postgres(dbm.DriverPostgres),
	postgres(dbm.DriverPgx),
	{name: "mariadb", system: "mariadb", code: "1064", opts: []dbmotel.Option{dbmotel.WithSystemName("mariadb")},
		config: func(t *testing.T) dbm.Config {
			host, port := conformance.MySQLAddr(t)
			return dbm.Config{Driver: dbm.DriverMySQL, Host: host, Port: port, User: "root", Database: "test"}
		}},
	{name: "sqlite", system: "sqlite", code: "1", config: func(*testing.T) dbm.Config {
		return dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}
	}},
}

// TestSpansAndMetricsOnServers runs statements, a failing one and a
// transaction on each server, and checks the spans and metrics against the
// database semantic conventions.
func TestSpansAndMetricsOnServers(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			cfg := tg.config(t)
			// Every statement outside a transaction takes its connection
			// through the manager, so every wait is measured.
			cfg.AcquireTimeout = time.Minute
			s := newSink(t, append([]dbmotel.Option{dbmotel.WithConfig(cfg)}, tg.opts...)...)
			m := s.open(t, cfg)
			checkServer(t, s, m, tg, cfg)
		})
	}
}

func checkServer(t *testing.T, s *sink, m *dbm.Manager, tg target, cfg dbm.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl := fmt.Sprintf("dbmotel_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := m.Exec(ctx, "CREATE TABLE "+tbl+" (id INTEGER PRIMARY KEY, name VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Exec(context.Background(), "DROP TABLE "+tbl) })
	if _, err := m.Exec(ctx, "INSERT INTO "+tbl+" (id, name) VALUES (?, ?)", 1, "secret-value"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := m.Get(ctx, &name, "SELECT name FROM "+tbl+" WHERE id = ?", 1); err != nil {
		t.Fatal(err)
	}
	_, bad := m.Exec(ctx, "SELEC 1")
	if bad == nil {
		t.Fatal("SELEC 1 succeeded")
	}
	if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE "+tbl+" SET name = ? WHERE id = ?", "other", 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	server := map[string]string{"server.address": cfg.Host, "server.port": strconv.Itoa(cfg.Port)}
	if tg.system == "sqlite" {
		server = map[string]string{"server.address": "", "server.port": ""}
	}
	for _, op := range []string{"INSERT", "SELECT", "UPDATE"} {
		spans := s.ended(op)
		if len(spans) != 1 {
			t.Fatalf("%d %s spans, want 1", len(spans), op)
		}
		sp := spans[0]
		if sp.SpanKind() != trace.SpanKindClient || sp.Status().Code == codes.Error {
			t.Errorf("%s span: kind %v status %v, want client and no error", op, sp.SpanKind(), sp.Status())
		}
		got := attrs(sp.Attributes())
		wantAttrs(t, op, got, map[string]string{"db.system.name": tg.system, "db.operation.name": op, "db.query.text": "", "error.type": ""})
		wantAttrs(t, op, got, server)
		for _, a := range sp.Attributes() {
			if a.Value.String() == "secret-value" {
				t.Errorf("%s span holds an argument value: %v", op, a)
			}
		}
	}

	if n := s.ended("SELECT")[0].Name(); n != "SELECT "+cfg.Database {
		t.Errorf("span name %q, want {db.operation.name} {db.namespace}: SELECT %s", n, cfg.Database)
	}

	// The failing statement: error status, error.type the class.
	failed := s.ended("SELEC")
	if len(failed) != 1 {
		t.Fatalf("%d SELEC spans, want 1", len(failed))
	}
	fa := attrs(failed[0].Attributes())
	wantAttrs(t, "SELEC", fa, map[string]string{"error.type": dbm.Classify(bad).String(), "db.response.status_code": tg.code})
	if st := failed[0].Status(); st.Code != codes.Error || st.Description != dbm.Classify(bad).String() {
		t.Errorf("SELEC status = %+v, want error %q", st, dbm.Classify(bad))
	}

	// The transaction: its statement is its child; it committed.
	txs := s.ended(dbmotel.TxSpan)
	if len(txs) != 1 {
		t.Fatalf("%d transaction spans, want 1", len(txs))
	}
	if up := s.ended("UPDATE")[0]; up.Parent().SpanID() != txs[0].SpanContext().SpanID() {
		t.Error("the UPDATE span is not the transaction span's child")
	}
	wantAttrs(t, "tx", attrs(txs[0].Attributes()), map[string]string{"dbm.tx.committed": "true", "db.system.name": tg.system})

	// Pool waits: CREATE, INSERT, SELECT, SELEC and BEGIN took their
	// connection through the manager, one after the other: each found one
	// free, which wait_time records but which makes no span.
	if acq := s.ended(dbmotel.AcquireSpan); len(acq) != 0 {
		t.Errorf("%d acquire spans for calls that found a connection free, want none", len(acq))
	}
	checkMetrics(t, s, tg.system, 5)
}

// checkMetrics checks names, units and attributes of the metrics after
// checkServer's statements.
func checkMetrics(t *testing.T, s *sink, system string, acquires uint64) {
	t.Helper()
	pool := s.tracer.PoolName()
	dur := s.metric(t, "db.client.operation.duration")
	if dur.Unit != "s" {
		t.Errorf("operation.duration unit %q, want s", dur.Unit)
	}
	byOp := map[string]uint64{}
	for _, dp := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		a := attrs(dp.Attributes.ToSlice())
		if a["db.system.name"] != system {
			t.Errorf("operation.duration point with db.system.name %q", a["db.system.name"])
		}
		byOp[a["db.operation.name"]+"/"+a["error.type"]] += dp.Count
	}
	for _, k := range []string{"CREATE/", "INSERT/", "SELECT/", "UPDATE/", "SELEC/syntax"} {
		if byOp[k] != 1 {
			t.Errorf("operation.duration %s count = %d, want 1 (all: %v)", k, byOp[k], byOp)
		}
	}

	wait := s.metric(t, "db.client.connection.wait_time")
	hp := wait.Data.(metricdata.Histogram[float64]).DataPoints
	if wait.Unit != "s" || len(hp) != 1 || hp[0].Count != acquires || attrs(hp[0].Attributes.ToSlice())["db.client.connection.pool.name"] != pool {
		t.Errorf("wait_time = unit %q, points %+v; want s, %d waits in pool %q", wait.Unit, hp, acquires, pool)
	}
	create := s.metric(t, "db.client.connection.create_time")
	if cp := create.Data.(metricdata.Histogram[float64]).DataPoints; create.Unit != "s" || len(cp) != 1 || cp[0].Count == 0 ||
		attrs(cp[0].Attributes.ToSlice())["db.client.connection.pool.name"] != pool {
		t.Errorf("create_time = unit %q, points %+v; want s, the connections opened, in pool %q", create.Unit, cp, pool)
	}
	use := s.metric(t, "db.client.connection.use_time")
	if up := use.Data.(metricdata.Histogram[float64]).DataPoints; use.Unit != "s" || len(up) != 1 || up[0].Count != acquires ||
		attrs(up[0].Attributes.ToSlice())["db.client.connection.pool.name"] != pool || len(up[0].Attributes.ToSlice()) != 1 {
		t.Errorf("use_time = unit %q, points %+v; want s, one per wait (%d: each connection was given back), in pool %q", use.Unit, up, acquires, pool)
	}
	pending := s.metric(t, "db.client.connection.pending_requests")
	if pp := pending.Data.(metricdata.Sum[int64]).DataPoints; pending.Unit != "{request}" || len(pp) != 1 || pp[0].Value != 0 {
		t.Errorf("pending_requests = unit %q, points %+v; want {request}, 0", pending.Unit, pp)
	}

	count := s.metric(t, "db.client.connection.count")
	if count.Unit != "{connection}" {
		t.Errorf("connection.count unit %q", count.Unit)
	}
	states := map[string]bool{}
	for _, dp := range count.Data.(metricdata.Sum[int64]).DataPoints {
		a := attrs(dp.Attributes.ToSlice())
		if a["db.client.connection.pool.name"] != pool {
			t.Errorf("connection.count pool %q, want %q", a["db.client.connection.pool.name"], pool)
		}
		states[a["db.client.connection.state"]] = true
		if st := a["db.client.connection.state"]; st == "used" && dp.Value != 0 {
			t.Errorf("%d connections used after every statement ended", dp.Value)
		}
	}
	if !states["idle"] || !states["used"] || len(states) != 2 {
		t.Errorf("connection.count states %v, want idle and used", states)
	}
	if mx := s.metric(t, "db.client.connection.max"); mx.Unit != "{connection}" {
		t.Errorf("connection.max unit %q", mx.Unit)
	}
}
