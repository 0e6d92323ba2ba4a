package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	_ "github.com/lib/pq"              // "postgres"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// The PostgreSQL benchmarks use the server at DBM_TEST_PG_HOST and
// DBM_TEST_PG_PORT (default 127.0.0.1:5432, user postgres, database test,
// trust authentication), as the library's tests do, and skip without one.
func pgConfig(b *testing.B, driver string) dbm.Config {
	b.Helper()
	host, port := os.Getenv("DBM_TEST_PG_HOST"), os.Getenv("DBM_TEST_PG_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "5432"
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second)
	if err != nil {
		b.Skipf("no PostgreSQL at %s:%s: %v", host, port, err)
	}
	c.Close()
	p, _ := strconv.Atoi(port)
	return dbm.Config{Driver: driver, Host: host, Port: p, User: "postgres", Database: "test", SSLMode: "disable",
		Params: map[string]string{"application_name": "dbm_bench_issue6"}}
}

func pgDSN(cfg dbm.Config) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&application_name=dbm_bench_issue6",
		cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.Database)
}

// pgQuery returns $1 generated rows with memdriver's eight columns, so no
// table is needed.
const pgQuery = `SELECT g::int8 AS id, 'user' || g AS name, 'user' || g || '@example.com' AS email,
	g % 3 <> 0 AS active, timestamptz '2026-01-01' + g * interval '1 second' AS created_at,
	g * 1.5::float8 AS score, CASE WHEN g % 2 = 0 THEN 'nick' || g END AS nick, (20 + g % 50)::int4 AS age
	FROM generate_series(1, $1::int) AS g`

// BenchmarkPostgresScan reads 1 and 1,000 rows through lib/pq and through
// pgx's database/sql adapter, comparing the same contenders as BenchmarkScan.
func BenchmarkPostgresScan(b *testing.B) {
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverPgx} {
		cfg := pgConfig(b, driver)
		cfg.MaxOpenConns = 2
		m, err := dbm.New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		db := m.DB().DB
		for _, n := range []int{1, 1000} {
			runImpls(b, "driver="+driver+"/rows="+strconv.Itoa(n), impls(db, m, driver), n, pgQuery, n)
		}
		_ = m.Close()
	}
}

const (
	pointGoroutines = 64
	pointPool       = 8
	pointRows       = 1000
)

type pointRow struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

// BenchmarkPostgresPointSelect runs primary-key lookups from 64 goroutines
// over a pool of 8 connections: the manager (through its normal path, so
// with whatever retry and leak tracking the configuration turns on) against
// plain database/sql over the same driver, and, for pgx, against pgxpool
// used natively.
func BenchmarkPostgresPointSelect(b *testing.B) {
	ctx := context.Background()
	cfg := pgConfig(b, dbm.DriverPostgres)
	setup, err := sql.Open("postgres", pgDSN(cfg))
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	table := fmt.Sprintf("bench_issue6_%d", os.Getpid())
	if _, err := setup.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (id int8 PRIMARY KEY, name text NOT NULL);
		INSERT INTO %[1]s SELECT g, 'user' || g FROM generate_series(1, %d) g`, table, pointRows)); err != nil {
		b.Fatal(err)
	}
	defer setup.ExecContext(ctx, "DROP TABLE "+table)
	query := "SELECT id, name FROM " + table + " WHERE id = $1"

	parallel := func(b *testing.B, one func(id int64) error) {
		b.ReportAllocs()
		b.SetParallelism(max(1, pointGoroutines/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			id := int64(0)
			for pb.Next() {
				id = id%pointRows + 1
				if err := one(id); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for _, driver := range []string{dbm.DriverPostgres, dbm.DriverPgx} {
		dcfg := pgConfig(b, driver)
		dcfg.MaxOpenConns, dcfg.MaxIdleConns = pointPool, pointPool
		dcfg.RetryMaxAttempts = dbm.DefaultRetryMaxAttempts
		dcfg.LeakThreshold = 30 * time.Second
		prefix := "driver=" + driver
		b.Run(prefix+"/impl=sql", func(b *testing.B) {
			db, err := sql.Open(driver, pgDSN(dcfg))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(pointPool)
			db.SetMaxIdleConns(pointPool)
			parallel(b, func(id int64) error {
				var r pointRow
				return db.QueryRowContext(ctx, query, id).Scan(&r.ID, &r.Name)
			})
		})
		b.Run(prefix+"/impl=dbm", func(b *testing.B) {
			m, err := dbm.New(ctx, dcfg)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			parallel(b, func(id int64) error {
				_, err := dbm.One[pointRow](ctx, m, query, id)
				return err
			})
		})
		if driver != dbm.DriverPgx {
			continue
		}
		b.Run(prefix+"/impl=pgxpool", func(b *testing.B) {
			pcfg, err := pgxpool.ParseConfig(pgDSN(dcfg))
			if err != nil {
				b.Fatal(err)
			}
			pcfg.MaxConns, pcfg.MinConns = pointPool, pointPool
			pool, err := pgxpool.NewWithConfig(ctx, pcfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			parallel(b, func(id int64) error {
				var r pointRow
				return pool.QueryRow(ctx, query, id).Scan(&r.ID, &r.Name)
			})
		})
	}
}
