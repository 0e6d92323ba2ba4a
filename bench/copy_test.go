package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // "mysql"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/dbmanager-go/dbmanager/dbm"
	_ "github.com/dbmanager-go/dbmanager/dbm/dbmpgx" // Tx.CopyFrom uses pgx's COPY
)

// copyN is how many rows each bulk-load operation writes.
const copyN = 100_000

// copyData is copyN rows of (id, name, score, nick), nick NULL in every
// other row.
func copyData() [][]any {
	rows := make([][]any, copyN)
	for i := range rows {
		var nick any
		if i%2 == 0 {
			nick = "nick" + strconv.Itoa(i)
		}
		rows[i] = []any{int64(i), "user" + strconv.Itoa(i), float64(i) * 1.5, nick}
	}
	return rows
}

var copyColumns = []string{"id", "name", "score", "nick"}

// copyTarget is one database for BenchmarkCopyFrom.
type copyTarget struct {
	driver string
	config func(b *testing.B) dbm.Config
	ddl    string // column definitions
}

func mysqlConfig(b *testing.B) dbm.Config {
	c, err := net.DialTimeout("tcp", "127.0.0.1:3306", 2*time.Second)
	if err != nil {
		b.Skipf("no MariaDB at 127.0.0.1:3306: %v", err)
	}
	c.Close()
	return dbm.Config{Driver: dbm.DriverMySQL, Host: "127.0.0.1", User: "root", Database: "test"}
}

// BenchmarkCopyFrom loads copyN rows in one transaction on each driver:
// Tx.CopyFrom (impl=copyfrom) against the per-row INSERT loop a user would
// write with database/sql (impl=hand, the baseline) and, on pgx, against
// pgx's own CopyFrom on a pgx.Conn (impl=rawpgx). The table is emptied
// between operations, outside the timer.
func BenchmarkCopyFrom(b *testing.B) {
	pgDDL := "id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, nick TEXT"
	sqlDDL := "id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE NOT NULL, nick TEXT"
	targets := []copyTarget{
		{dbm.DriverPgx, func(b *testing.B) dbm.Config { return pgConfig(b, dbm.DriverPgx) }, pgDDL},
		{dbm.DriverPostgres, func(b *testing.B) dbm.Config { return pgConfig(b, dbm.DriverPostgres) }, pgDDL},
		{dbm.DriverMySQL, mysqlConfig, sqlDDL},
		{dbm.DriverSQLite, func(b *testing.B) dbm.Config {
			return dbm.Config{Driver: dbm.DriverSQLite, Database: filepath.Join(b.TempDir(), "copy.db")}
		}, "id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL NOT NULL, nick TEXT"},
	}
	data := copyData()
	for _, tg := range targets {
		b.Run("driver="+tg.driver, func(b *testing.B) { benchCopy(b, tg, data) })
	}
}

func benchCopy(b *testing.B, tg copyTarget, data [][]any) {
	ctx := context.Background()
	cfg := tg.config(b)
	cfg.MaxOpenConns = 2
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tbl := fmt.Sprintf("bench_copy_%d", os.Getpid())
	if _, err := m.Exec(ctx, "CREATE TABLE "+tbl+" ("+tg.ddl+")"); err != nil {
		b.Fatal(err)
	}
	defer m.Exec(ctx, "DROP TABLE "+tbl)
	// TRUNCATE leaves no dead rows behind to slow the next load down;
	// SQLite's DELETE without WHERE is its truncate.
	truncate := "TRUNCATE TABLE " + tbl
	if tg.driver == dbm.DriverSQLite {
		truncate = "DELETE FROM " + tbl
	}
	empty := func(b *testing.B) {
		b.StopTimer()
		if _, err := m.Exec(ctx, truncate); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	insert := "INSERT INTO " + tbl + " (id, name, score, nick) VALUES (?, ?, ?, ?)"
	if tg.driver == dbm.DriverPgx || tg.driver == dbm.DriverPostgres {
		insert = "INSERT INTO " + tbl + " (id, name, score, nick) VALUES ($1, $2, $3, $4)"
	}
	impls := []struct {
		name string
		run  func() (int64, error)
	}{
		{"hand", func() (int64, error) { return handInserts(ctx, m.DB().DB, insert, data) }},
		{"copyfrom", func() (n int64, err error) {
			err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
				n, err = tx.CopyFrom(ctx, tbl, copyColumns, dbm.CopyRows(data))
				return err
			})
			return n, err
		}},
	}
	if tg.driver == dbm.DriverPgx {
		conn, err := pgx.Connect(ctx, pgDSN(cfg))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		impls = append(impls, struct {
			name string
			run  func() (int64, error)
		}{"rawpgx", func() (int64, error) { return rawPgxCopy(ctx, conn, tbl, data) }})
	}
	if tg.driver == dbm.DriverSQLite {
		// The floor on SQLite: the engine makes the same rows itself in
		// one INSERT ... SELECT, so nothing crosses from Go per row. No
		// client-side loader can be faster than SQLite's own work per
		// row, which this measures (with a recursive CTE's small cost).
		engine := "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < " +
			strconv.Itoa(copyN-1) + ") INSERT INTO " + tbl +
			" (id, name, score, nick) SELECT i, 'user' || i, i * 1.5, CASE WHEN i % 2 = 0 THEN 'nick' || i END FROM s"
		impls = append(impls, struct {
			name string
			run  func() (int64, error)
		}{"engine", func() (int64, error) { return engineInsert(ctx, m.DB().DB, engine) }})
	}
	for _, im := range impls {
		b.Run("rows="+strconv.Itoa(copyN)+"/impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			// CPU time of the loads only: emptying the table between
			// them (a 100,000-row DELETE on SQLite) is left out, as the
			// timer leaves it out.
			var cpu int64
			for b.Loop() {
				empty(b)
				start := cpuTime()
				n, err := im.run()
				if end := cpuTime(); start >= 0 && end >= start && cpu >= 0 {
					cpu += end - start
				} else {
					cpu = -1
				}
				if err != nil {
					b.Fatal(err)
				}
				if n != copyN {
					b.Fatalf("loaded %d rows, want %d", n, copyN)
				}
			}
			if cpu >= 0 && b.N > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
			empty(b)
		})
	}
}

// handInserts is the loop a user writes with database/sql alone: one
// INSERT per row in one transaction, the statement prepared once.
func handInserts(ctx context.Context, db *sql.DB, insert string, data [][]any) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	for _, r := range data {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			return 0, err
		}
	}
	return int64(len(data)), tx.Commit()
}

// rawPgxCopy is pgx's CopyFrom on its own connection, in a transaction.
func rawPgxCopy(ctx context.Context, conn *pgx.Conn, tbl string, data [][]any) (int64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	n, err := tx.CopyFrom(ctx, pgx.Identifier{tbl}, copyColumns, pgx.CopyFromRows(data))
	if err != nil {
		return 0, err
	}
	return n, tx.Commit(ctx)
}

// engineInsert runs one INSERT ... SELECT that makes its rows inside the
// database, in a transaction as the other loaders do.
func engineInsert(ctx context.Context, db *sql.DB, query string) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
