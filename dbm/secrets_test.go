package dbm_test

// One test for the rule "no secret in any log line, error string or fmt
// output": a distinctive password is configured, every kind of output the
// library produces is collected, and none may contain the password in any
// form.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmprom"
	"github.com/dbmanager-go/dbmanager/dbm/internal/pgtest"
)

// secretPassword returns a password no output can contain by accident: a
// random core ("S3cr3t-<hex>") and the characters that URLs, DSNs and SQL
// treat specially.
func secretPassword() string { return "S3cr3t-" + pgRandom(6) + "-pa$$:@/?#" }

// secretForms are the ways a password can show in text: as written, URL-
// and percent-encoded, and its random core, which survives quoting and
// escaping of any kind, also in hex (%x, %X).
func secretForms(pw string) []string {
	core, _, _ := strings.Cut(strings.TrimPrefix(pw, "S3cr3t-"), "-")
	core = "S3cr3t-" + core
	return []string{
		pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("", pw).String()[1:],
		core, hex.EncodeToString([]byte(core)), strings.ToUpper(hex.EncodeToString([]byte(core))),
	}
}

// outputs collects what the library printed, by where it came from.
type outputs struct {
	mu   sync.Mutex
	text map[string]string
}

func (o *outputs) add(name, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.text == nil {
		o.text = map[string]string{}
	}
	o.text[name] += text + "\n"
}

// addErr records err with every fmt verb, each error of its chain, and a
// JSON log record of it.
func (o *outputs) addErr(name string, err error) {
	if err == nil {
		return
	}
	o.add(name, fmtAll(err))
	for e := err; e != nil; e = errors.Unwrap(e) {
		o.add(name+" (chain)", fmt.Sprintf("%T %s", e, e.Error()))
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Error("failed", "err", err)
	o.add(name+" (slog)", b.String())
}

// check fails t for every output that holds the password.
func (o *outputs) check(t *testing.T, pw string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, text := range o.text {
		for _, form := range secretForms(pw) {
			if strings.Contains(text, form) {
				t.Errorf("%s shows the password (as %q):\n%s", name, form, text)
				break
			}
		}
	}
}

// textTracer is a Tracer (and AcquireTracer) that prints what it is told.
type textTracer struct{ out *outputs }

func (tr textTracer) Start(ctx context.Context, op dbm.TraceOp) context.Context {
	tr.out.add("tracer Start", fmtAll(op))
	return ctx
}

func (tr textTracer) End(_ context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	tr.out.add("tracer End", fmtAll(op)+fmtAll(res))
	tr.out.addErr("tracer End error", res.Err)
}

func (tr textTracer) TraceAcquire(_ context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	tr.out.add("tracer TraceAcquire", fmtAll(op)+fmtAll(res))
}

// stepClock advances two minutes each time it is read: every statement is
// slow, and the pool check (once a minute) runs after every statement.
func stepClock() func() time.Time {
	var n atomic.Int64
	start := time.Now()
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * 2 * time.Minute) }
}

func TestPasswordAppearsNowhere(t *testing.T) {
	pw := secretPassword()
	ctx := context.Background()

	t.Run("config", func(t *testing.T) {
		out := &outputs{}
		configs := map[string]dbm.Config{
			"fields": {Host: "db.example.com", User: "app", Password: pw, Database: "app",
				Params: map[string]string{"sslpassword": pw, "application_name": "api"}},
			"URL DSN":       {DSN: "postgres://app:" + url.QueryEscape(pw) + "@db.example.com/app?sslmode=disable"},
			"raw URL DSN":   {DSN: "postgres://app:" + pw + "@db.example.com/app"},
			"key=value DSN": {DSN: "host=db.example.com user=app password='" + pw + "' dbname=app"},
			"MySQL DSN":     {Driver: dbm.DriverMySQL, DSN: "app:" + pw + "@tcp(db.example.com:3306)/app"},
		}
		for name, cfg := range configs {
			out.add(name+" fmt", fmtAll(cfg)+fmtAll(&cfg)+fmt.Sprintf("%+v %10.3v %-40s", struct{ C dbm.Config }{cfg}, cfg, &cfg))
			out.add(name+" String", cfg.String()+cfg.GoString())
			var b bytes.Buffer
			slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cfg", cfg)
			slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "cfg", cfg)
			out.add(name+" slog", b.String())
			js, err := json.Marshal(cfg)
			out.add(name+" json.Marshal", string(js))
			out.addErr(name+" json.Marshal", err)
			if name != "raw URL DSN" && !strings.Contains(fmt.Sprint(cfg), "redacted") {
				t.Errorf("%s: %v shows no redaction mark", name, cfg)
			}
		}
		// Configuration errors, from the environment and from New.
		clearDBEnv(t)
		t.Setenv("DB_PASSWORD", pw)
		for _, bad := range [][2]string{{"DB_PORT", "x"}, {"DB_PARAMS", "sslpassword=" + pw + ",broken"}, {"DB_DSN", "postgres://app:" + pw + "@db/app%zz"}} {
			t.Setenv(bad[0], bad[1])
			_, err := dbm.LoadConfig()
			if !errors.Is(err, dbm.ErrConfig) {
				t.Errorf("%s=...: err = %v, want ErrConfig", bad[0], err)
			}
			out.addErr("LoadConfig "+bad[0], err)
			t.Setenv(bad[0], "")
		}
		_, err := dbm.New(ctx, dbm.Config{DSN: "postgres://app:" + pw + "@db/app%zz"})
		out.addErr("New with an invalid DSN", err)
		out.check(t, pw)
	})

	t.Run("connect failures", func(t *testing.T) {
		out := &outputs{}
		logs := &logBuffer{}
		port := freePort(t)
		configs := map[string]dbm.Config{
			"lib/pq fields":  {Host: "127.0.0.1", Port: port, User: "app", Password: pw, Database: "app", SSLMode: "disable"},
			"lib/pq URL DSN": {DSN: "postgres://app:" + url.QueryEscape(pw) + "@127.0.0.1:" + strconv.Itoa(port) + "/app?sslmode=disable"},
			"lib/pq key=value DSN": {DSN: "host=127.0.0.1 port=" + strconv.Itoa(port) + " user=app password='" + pw +
				"' dbname=app sslmode=disable"},
			"MySQL DSN": {Driver: dbm.DriverMySQL, DSN: "app:" + pw + "@tcp(127.0.0.1:" + strconv.Itoa(port) + ")/app"},
		}
		for name, cfg := range configs {
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err := dbm.New(cctx, cfg, dbm.WithLogger(logs.logger()))
			cancel()
			if !errors.Is(err, dbm.ErrConnection) {
				t.Errorf("%s: err = %v, want ErrConnection", name, err)
			}
			out.addErr(name, err)
		}
		t.Run("MariaDB refuses the password", func(t *testing.T) {
			const addr = "127.0.0.1:3306"
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				missingServer(t, "MariaDB at "+addr, err)
			}
			c.Close()
			_, err = dbm.New(ctx, dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Password: pw, Database: "test"}, dbm.WithLogger(logs.logger()))
			if !errors.Is(err, dbm.ErrPermission) {
				t.Errorf("err = %v, want ErrPermission", err)
			}
			out.addErr("MariaDB login", err)
		})
		t.Run("scram server refuses the password", func(t *testing.T) {
			srv := pgtest.Start(t, pgtest.OnMissing(missingServer))
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			cfg := dbm.Config{Host: srv.Host, Port: srv.Port, User: srv.Superuser, Password: pw, Database: "postgres", SSLMode: "disable"}
			_, err := dbm.New(cctx, cfg, dbm.WithLogger(logs.logger()))
			if !errors.Is(err, dbm.ErrPermission) {
				t.Errorf("err = %v, want ErrPermission (28P01)", err)
			}
			out.addErr("scram login", err)
		})
		if !strings.Contains(logs.String(), "not answering yet") {
			t.Errorf("no connect retry was logged, so its line was not checked:\n%s", logs)
		}
		out.add("log", logs.String())
		out.check(t, pw)
	})

	t.Run("SQLite manager", func(t *testing.T) {
		cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", Password: pw}
		exerciseManager(t, cfg, pw, "sqlite")
	})

	t.Run("PostgreSQL manager", func(t *testing.T) {
		cfg := postgresConfig(t) // trust authentication: the password is sent and ignored
		cfg.Password = pw
		cfg.Params = map[string]string{"application_name": "dbm-secrets-" + pgRandom(4)}
		exerciseManager(t, cfg, pw, "postgres")
	})
}

// exerciseManager makes a manager configured with pw produce every output
// it has: statement and server errors, each log line, traces, statistics,
// leak reports and Close's error; and checks that none shows pw.
func exerciseManager(t *testing.T, cfg dbm.Config, pw, backend string) {
	ctx := context.Background()
	out := &outputs{}
	logs := &logBuffer{}
	cfg.SlowQueryThreshold = time.Nanosecond // every statement is logged as slow
	cfg.LeakThreshold = time.Hour            // reported by CheckLeaksAt below
	cfg.MaxOpenConns = 2                     // so that statements wait for a connection
	m, err := dbm.New(ctx, cfg, dbm.WithLogger(logs.logger()), dbm.WithTracer(textTracer{out}), dbm.WithClock(stepClock()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close()
		}
	})
	out.add("manager fmt", fmtAll(m))

	lit := "'" + strings.ReplaceAll(pw, "'", "''") + "'"
	table := "dbm_secrets_" + pgRandom(4)
	if _, err := m.Exec(ctx, "CREATE TABLE "+table+" (v VARCHAR(100) PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	dropTable := func() { m.DB().Exec("DROP TABLE IF EXISTS " + table) } // before Close
	t.Cleanup(dropTable)

	// Statements that hold the password, and errors about them.
	var v string
	if err := m.Get(ctx, &v, "SELECT "+lit+" AS v"); err != nil || v != pw {
		t.Fatalf("the password as a literal: %q, %v", v, err)
	}
	errs := map[string]error{}
	errs["syntax"] = m.Get(ctx, &v, "SELEC "+lit)
	errs["undefined table named like the password"] = m.Get(ctx, &v, `SELECT v FROM "`+pw+`"`)
	_, errs["unique violation on the password"] = m.Exec(ctx, "INSERT INTO "+table+" (v) VALUES (?), (?)", pw, pw)
	long := "SELECT " + strings.Repeat("1 + ", 40) + "1 AS n, " + lit + " AS v FROM nowhere"
	errs["long statement cut through the password"] = m.Get(ctx, &v, long)
	if backend == "postgres" {
		// Retried (40001 proves it did not take effect) and then given up:
		// DEBUG "retrying" and WARN "giving up", the server's message
		// holding the password.
		_, errs["retried serialization failure"] = m.Exec(ctx, "DO $body$ BEGIN RAISE EXCEPTION '%', "+lit+" USING ERRCODE = '40001'; END $body$")
	}
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		out.addErr(name, err)
	}

	// A panic in WithTx is re-raised as it was, after the rollback.
	func() {
		defer func() {
			p := recover()
			if p != "boom" {
				t.Errorf("WithTx re-panicked with %#v, want the value fn panicked with", p)
			}
			out.add("WithTx panic", fmt.Sprintf("%v %#v", p, p))
		}()
		m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT "+lit); err != nil {
				t.Error(err)
			}
			panic("boom")
		})
	}()

	// Pool saturation: both connections held, a third statement waits.
	held1, err := m.Query(ctx, "SELECT "+lit+" AS v")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- m.Get(ctx, &struct{ V string }{}, "SELECT "+lit+" AS v") }()
	for deadline := time.Now().Add(30 * time.Second); m.Stats().WaitCount == 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the third statement never waited for a connection")
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}

	// Leaks: held1 over the threshold, then closed; dropped rows reclaimed;
	// held2 and a transaction still open at Close.
	m.CheckLeaksAt(time.Now().Add(2 * time.Hour))
	dropRows(t, m, "SELECT "+lit+" AS dropped")
	m.SweepLeaksAt(time.Now().Add(time.Hour))
	gcUntil(t, "the dropped rows were not reclaimed", func() bool { return m.Stats().LeaksReclaimed == 1 })
	if err := held1.Close(); err != nil {
		t.Fatal(err)
	}
	held2, err := m.Query(ctx, "SELECT "+lit+" AS v")
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	leaks := m.Leaks()
	if len(leaks) != 1 || leaks[0].Query == "" {
		t.Errorf("Leaks() = %v, want the held rows", leaks)
	}
	for _, l := range leaks {
		out.add("Leaks", fmtAll(l)+l.String())
	}
	stats := m.Stats()
	out.add("Stats", fmtAll(stats))
	out.add("dbmprom", scrape(t, m))

	dropTable()
	closed = true
	closeErr := m.Close()
	var le *dbm.LeakError
	if !errors.As(closeErr, &le) {
		t.Errorf("Close = %v, want a *LeakError", closeErr)
	} else {
		out.add("LeakError", fmtAll(le))
	}
	out.addErr("Close", closeErr)
	out.add("log", logs.String())

	// Every log line was made, or the test proves nothing about it.
	want := []string{"level=DEBUG msg=\"dbm: connected\"", "level=WARN msg=\"dbm: slow statement\"",
		"pool saturated", "open longer than the leak threshold", "reclaimed by the garbage collector",
		"level=INFO msg=\"dbm: leaked rows closed\""}
	if backend == "postgres" {
		want = append(want, "level=DEBUG msg=\"dbm: retrying\"", "level=WARN msg=\"dbm: giving up\"")
	}
	for _, w := range want {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the log lacks %s, so it was not checked:\n%s", w, logs)
		}
	}
	if stats.Statements == 0 || stats.Errors == 0 || stats.LeaksDetected == 0 {
		t.Errorf("Stats = %+v: nothing counted", stats)
	}
	out.check(t, pw)
}

// scrape returns every metric dbmprom reports for m, as Prometheus scrapes
// them.
func scrape(t *testing.T, m *dbm.Manager) string {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(dbmprom.NewCollector(m))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "dbm_errors_total{class=") {
		t.Errorf("the scrape (%d) lacks the error counts:\n%s", rec.Code, body)
	}
	return body
}
