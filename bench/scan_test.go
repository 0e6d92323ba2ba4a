package bench

import (
	"context"
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/georgysavva/scany/v2/sqlscan"
	"github.com/jmoiron/sqlx"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/internal/memdriver"
)

// Row matches memdriver's eight columns.
type Row struct {
	ID        int64          `db:"id"`
	Name      string         `db:"name"`
	Email     string         `db:"email"`
	Active    bool           `db:"active"`
	CreatedAt time.Time      `db:"created_at"`
	Score     float64        `db:"score"`
	Nick      sql.NullString `db:"nick"`
	Age       int            `db:"age"`
}

const memQuery = "SELECT id, name, email, active, created_at, score, nick, age FROM users"

// handLoop is the code a user would write with database/sql alone.
func handLoop(ctx context.Context, db *sql.DB, query string, args ...any) ([]Row, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.ID, &r.Name, &r.Email, &r.Active, &r.CreatedAt, &r.Score, &r.Nick, &r.Age); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// impl is one way of reading every row of query into a []Row.
type impl struct {
	name string
	run  func(ctx context.Context, query string, args ...any) (int, error)
}

// impls returns the contenders over one pool: the hand loop (the baseline),
// the manager's three ways, sqlx and scany.
func impls(db *sql.DB, m *dbm.Manager, driverName string) []impl {
	x := sqlx.NewDb(db, driverName)
	return []impl{
		{"hand", func(ctx context.Context, q string, args ...any) (int, error) {
			out, err := handLoop(ctx, db, q, args...)
			return len(out), err
		}},
		{"ExecuteQuery", func(ctx context.Context, q string, args ...any) (int, error) {
			var out []Row
			err := m.ExecuteQuery(ctx, &out, q, args...)
			return len(out), err
		}},
		{"Select", func(ctx context.Context, q string, args ...any) (int, error) {
			out, err := dbm.Select[Row](ctx, m, q, args...)
			return len(out), err
		}},
		{"Iter", func(ctx context.Context, q string, args ...any) (int, error) {
			n := 0
			for _, err := range dbm.Iter[Row](ctx, m, q, args...) {
				if err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		}},
		{"sqlx", func(ctx context.Context, q string, args ...any) (int, error) {
			var out []Row
			err := x.SelectContext(ctx, &out, q, args...)
			return len(out), err
		}},
		{"scany", func(ctx context.Context, q string, args ...any) (int, error) {
			var out []Row
			err := sqlscan.Select(ctx, db, &out, q, args...)
			return len(out), err
		}},
	}
}

func runImpls(b *testing.B, prefix string, list []impl, want int, query string, args ...any) {
	ctx := context.Background()
	for _, im := range list {
		b.Run(prefix+"/impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				n, err := im.run(ctx, query, args...)
				if err != nil {
					b.Fatal(err)
				}
				if n != want {
					b.Fatalf("got %d rows, want %d", n, want)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU adds the process's CPU time per operation since start
// ("cpu-ns/op"), the garbage collector's included. On a machine shared with
// other work it varies much less than the wall-clock time: time spent
// waiting for a core is not counted.
func reportCPU(b *testing.B, start int64) {
	if end := cpuTime(); start >= 0 && end >= start && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkScan reads 1, 100 and 10,000 rows of eight columns from the
// in-memory driver, so only scanning and each library's own work count.
func BenchmarkScan(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		db, err := sql.Open(memdriver.Name, strconv.Itoa(n))
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		m, err := dbm.Wrap(db, "mem")
		if err != nil {
			b.Fatal(err)
		}
		runImpls(b, "rows="+strconv.Itoa(n), impls(db, m, "mem"), n, memQuery)
		_ = m.Close()
	}
}
