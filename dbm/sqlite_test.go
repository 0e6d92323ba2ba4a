package dbm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestSQLiteMemoryIsOneDatabaseForThePool(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	if _, err := m.Exec(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	// Hold one connection in a transaction so the next statements must use
	// other connections of the pool; they must see the same table.
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n []int
	if err := tx.ExecuteQuery(ctx, &n, "SELECT count(*) FROM kv"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c []int
			errs <- m.ExecuteQuery(ctx, &c, "SELECT count(*) FROM kv")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("another connection cannot see the table: %v", err)
		}
	}
	if open := m.Stats().OpenConnections; open < 2 {
		t.Errorf("OpenConnections = %d, the test needs at least 2 to prove sharing", open)
	}
}

func TestSQLiteMemoryOutlivesIdleConnections(t *testing.T) {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", ConnMaxIdleTime: time.Millisecond, MaxOpenConns: 2, MaxIdleConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Exec(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	// Close every pooled connection; the manager's own keeps the data.
	m.DB().SetMaxIdleConns(0)
	m.DB().SetMaxIdleConns(1)
	if got := m.Stats().OpenConnections; got != 0 {
		t.Fatalf("OpenConnections = %d, want 0 after dropping idle connections", got)
	}
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Errorf("table gone after the pool closed its connections: %v", err)
	}
}

func TestSQLiteTwoManagersDoNotShare(t *testing.T) {
	ctx := context.Background()
	a, b := newSQLite(t), newSQLite(t)
	if _, err := a.Exec(ctx, "CREATE TABLE only_a (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "SELECT * FROM only_a"); err == nil {
		t.Error("a second in-memory manager sees the first one's table")
	}
}

func TestSQLiteFileDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "odd name?#.db")
	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: path}
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "INSERT INTO t VALUES (?)", 42); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m2, err := dbm.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	x, err := dbm.One[int](ctx, m2, "SELECT x FROM t")
	if err != nil || x != 42 {
		t.Errorf("reopened file: %d, %v", x, err)
	}
}

type Team struct {
	ID   int64  `db:"team_id"`
	Name string `db:"team_name"`
}

type Meta struct {
	Tags string `db:"tags"`
}

type Player struct {
	ID      int64      `db:"id"`
	Name    string     `db:"name"`
	Born    time.Time  `db:"born"`
	Retired *time.Time `db:"retired"`
	Score   *float64   `db:"score"`
	Team               // embedded struct: team_id, team_name
	*Meta              // embedded pointer: allocated when a column needs it
	Photo   []byte     `db:"photo"`
}

func seedPlayers(t *testing.T, m *dbm.Manager) {
	t.Helper()
	ctx := context.Background()
	if _, err := m.Exec(ctx, `CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born TIMESTAMP NOT NULL,
		retired TIMESTAMP, score REAL, team_id INTEGER, team_name TEXT, tags TEXT, photo BLOB)`); err != nil {
		t.Fatal(err)
	}
	born := time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		for i, name := range []string{"ann", "bob", "cat"} {
			var score any
			if i != 1 {
				score = float64(i) + 0.5
			}
			if _, err := tx.Exec(ctx, "INSERT INTO players VALUES (?, ?, ?, NULL, ?, 7, 'reds', 'x,y', ?)", i+1, name, born, score, []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteScanning(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedPlayers(t, m)

	players, err := dbm.Select[Player](ctx, m, "SELECT * FROM players ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(players) != 3 {
		t.Fatalf("got %d players", len(players))
	}
	p := players[0]
	if p.Name != "ann" || p.Born.Year() != 1990 || p.Retired != nil || p.Score == nil || *p.Score != 0.5 ||
		p.Team.ID != 7 || p.Team.Name != "reds" || p.Meta == nil || p.Meta.Tags != "x,y" || len(p.Photo) != 1 {
		t.Errorf("player 0 = %+v (meta %+v)", p, p.Meta)
	}
	if players[1].Score != nil {
		t.Errorf("NULL score should stay nil: %v", *players[1].Score)
	}

	// Iter streams, and breaking early releases the connection.
	var names []string
	for pl, err := range dbm.Iter[Player](ctx, m, "SELECT id, name FROM players ORDER BY id") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, pl.Name)
		if len(names) == 2 {
			break
		}
	}
	if strings.Join(names, ",") != "ann,bob" {
		t.Errorf("Iter names = %v", names)
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after breaking out of Iter", s.InUse)
	}

	// Iter over scalars, and errors yielded once.
	var total int64
	for id, err := range dbm.Iter[int64](ctx, m, "SELECT id FROM players") {
		if err != nil {
			t.Fatal(err)
		}
		total += id
	}
	if total != 6 {
		t.Errorf("sum of ids = %d", total)
	}
	var iterErrs int
	for _, err := range dbm.Iter[Player](ctx, m, "SELECT * FROM no_such_table") {
		if err == nil {
			t.Error("Iter yielded a row from a missing table")
		}
		iterErrs++
	}
	if iterErrs != 1 {
		t.Errorf("Iter yielded %d errors, want 1", iterErrs)
	}

	// Maps get strings for text and []byte for blobs.
	var rows []map[string]any
	if err := m.ExecuteQuery(ctx, &rows, "SELECT name, photo, score FROM players WHERE id = ?", 2); err != nil {
		t.Fatal(err)
	}
	if rows[0]["name"] != "bob" || rows[0]["score"] != nil {
		t.Errorf("map row = %#v", rows[0])
	}
	if _, ok := rows[0]["photo"].([]byte); !ok {
		t.Errorf("blob = %#v, want []byte", rows[0]["photo"])
	}
	var one map[string]any
	if err := m.Get(ctx, &one, "SELECT name FROM players WHERE id = 3"); err != nil || one["name"] != "cat" {
		t.Errorf("Get map = %v, %v", one, err)
	}
}

func TestSQLiteConcurrentCallersShareThePlanCache(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedPlayers(t, m)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "SELECT id, name FROM players"
			if i%2 == 1 {
				q = "SELECT name, id, team_name FROM players"
			}
			for range 20 {
				ps, err := dbm.Select[Player](ctx, m, q)
				if err != nil || len(ps) != 3 || ps[2].Name != "cat" {
					t.Errorf("Select = %d rows, %v", len(ps), err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSQLiteErrorsClassified(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedPlayers(t, m)
	_, err := m.Exec(ctx, "SELEC nonsense")
	if err == nil {
		t.Fatal("no error for bad SQL")
	}
	var de *dbm.Error
	if !errors.As(err, &de) || de.Op != "exec" || !strings.Contains(err.Error(), "SELEC nonsense") {
		t.Errorf("err = %v, want a *dbm.Error naming the statement", err)
	}
	_, err = dbm.One[Player](ctx, m, "SELECT * FROM players WHERE id = ?", 99)
	if !errors.Is(err, dbm.ErrNotFound) {
		t.Errorf("missing row: %v", err)
	}
}

func TestSlowStatementsAreLogged(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A threshold of 1ns makes every statement slow without depending on
	// how fast this machine is.
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", Password: "Zq9-slow-secret", SlowQueryThreshold: time.Nanosecond}, dbm.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Exec(ctx, "CREATE TABLE secrets (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "INSERT INTO secrets VALUES (?)", "argument-value-42"); err != nil {
		t.Fatal(err)
	}
	var vs []string
	if err := m.ExecuteQuery(ctx, &vs, "SELECT v FROM secrets"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Exec(ctx, "SELECT 'Zq9-slow-secret'"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "dbm: slow statement") != 4 || !strings.Contains(out, "INSERT INTO secrets VALUES (?)") || !strings.Contains(out, "rows=1") {
		t.Errorf("log = %s", out)
	}
	if strings.Contains(out, "argument-value-42") {
		t.Errorf("log contains an argument value: %s", out)
	}
	if strings.Contains(out, "Zq9-slow-secret") || !strings.Contains(out, "withheld") {
		t.Errorf("a statement holding the password was logged: %s", out)
	}
	if s := m.Stats(); s.SlowStatements != 4 {
		t.Errorf("SlowStatements = %d, want 4", s.SlowStatements)
	}

	// With the threshold off nothing is logged.
	buf.Reset()
	quiet, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, dbm.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	if _, err := quiet.Exec(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "slow statement") {
		t.Errorf("logged with the threshold off: %s", buf.String())
	}
}

func TestNewRejectsUnregisteredDriver(t *testing.T) {
	// pgx is not imported by this test binary.
	_, err := dbm.New(context.Background(), dbm.Config{Driver: dbm.DriverPgx, Host: "localhost", Database: "x"})
	if !errors.Is(err, dbm.ErrConfig) || !strings.Contains(err.Error(), "github.com/jackc/pgx/v5/stdlib") {
		t.Errorf("err = %v, want ErrConfig naming the import to add", err)
	}
}

func TestManagerStringHidesSecrets(t *testing.T) {
	m := newSQLite(t)
	for _, s := range []string{m.String(), fmtAll(m)} {
		if !strings.Contains(s, "sqlite") {
			t.Errorf("String = %q", s)
		}
	}
}

type hiddenBase struct {
	ID int64 `db:"id"`
}

// withHiddenBase embeds a pointer to an unexported struct, which reflect
// cannot set directly; the scanner must still allocate it.
type withHiddenBase struct {
	*hiddenBase
	Name string `db:"name"`
}

func TestEmbeddedPointerToUnexportedStruct(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	got, err := dbm.Select[withHiddenBase](ctx, m, "SELECT 7 AS id, 'a' AS name")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].hiddenBase == nil || got[0].ID != 7 || got[0].Name != "a" {
		t.Errorf("got %+v", got)
	}
}

func TestIdleConnectionsDefaultToMaxOpen(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t) // MaxOpenConns 10, MaxIdleConns left at zero
	// Hold five connections at once, then release them all: with
	// database/sql's default of 2 idle connections, three would be closed.
	var txs []*dbm.Tx
	for range 5 {
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.Idle != 5 || s.MaxIdleClosed != 0 {
		t.Errorf("Idle = %d, MaxIdleClosed = %d; want all 5 connections kept idle", s.Idle, s.MaxIdleClosed)
	}
}

func TestIterStreams(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	// Ten million rows: buffering them would take seconds and gigabytes;
	// streaming yields the first one at once.
	const q = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) SELECT i FROM n"
	for i, err := range dbm.Iter[int64](ctx, m, q) {
		if err != nil {
			t.Fatal(err)
		}
		if s := m.Stats(); s.InUse != 1 {
			t.Errorf("InUse = %d inside the loop; the rows must still be open (streaming)", s.InUse)
		}
		if i != 1 {
			t.Errorf("first value = %d", i)
		}
		break
	}
	if s := m.Stats(); s.InUse != 0 {
		t.Errorf("InUse = %d after break", s.InUse)
	}
}

func TestSlowStatementThresholdIsRespected(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", SlowQueryThreshold: time.Hour},
		dbm.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Exec(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 || m.Stats().SlowStatements != 0 {
		t.Errorf("a statement far under the threshold was logged as slow: %s", buf.String())
	}
}

func TestWithNameMapper(t *testing.T) {
	ctx := context.Background()
	snake := func(field string) string { // UserID -> user_i_d is enough for this test
		var b strings.Builder
		for i, r := range field {
			if i > 0 && r >= 'A' && r <= 'Z' {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		}
		return strings.ToLower(b.String())
	}
	type row struct {
		FirstName string
		LastName  string
		Nick      string `db:"alias"` // a tag still wins
	}
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, dbm.WithNameMapper(snake))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := dbm.One[row](ctx, m, "SELECT 'Ada' AS first_name, 'Lovelace' AS last_name, 'countess' AS alias")
	if err != nil || got.FirstName != "Ada" || got.LastName != "Lovelace" || got.Nick != "countess" {
		t.Errorf("custom mapper: %+v, %v", got, err)
	}
	// The default manager (lower-cased names) does not know first_name:
	// mappers are per manager, nothing global changed.
	other := newSQLite(t)
	if _, err := dbm.One[row](ctx, other, "SELECT 'Ada' AS first_name"); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Errorf("default mapper after a custom one: %v, want ErrUnknownColumn", err)
	}
}

func TestRowsScanAndColumns(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	rows, err := m.Query(ctx, "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || strings.Join(cols, ",") != "a,b" {
		t.Errorf("Columns = %v, %v", cols, err)
	}
	if cts, err := rows.ColumnTypes(); err != nil || len(cts) != 2 {
		t.Errorf("ColumnTypes = %v, %v", cts, err)
	}
	var sum int
	var text string
	for rows.Next() {
		var a int
		var b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		sum += a
		text += b
	}
	if err := rows.Err(); err != nil || sum != 3 || text != "xy" {
		t.Errorf("sum=%d text=%q err=%v", sum, text, err)
	}
	if rows.Next() {
		t.Error("Next after the end")
	}
	var a int
	if err := rows.Scan(&a); err == nil {
		t.Error("Scan after the end should fail")
	}
}
