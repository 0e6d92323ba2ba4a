package conformance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// copyRows is n rows (id, name, score, payload) for CopyFrom; every third
// has NULL name and payload.
func copyRows(first, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		id := int64(first + i)
		if i%3 == 2 {
			rows[i] = []any{id, nil, float64(id) / 2, nil}
		} else {
			rows[i] = []any{id, fmt.Sprint("n", id), float64(id) / 2, []byte{byte(id), 0, 0xff}}
		}
	}
	return rows
}

func testCopyFrom(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	d := tg.Dialect
	ctx := context.Background()
	cols := "id " + d.BigInt + " PRIMARY KEY, name " + d.Text + ", score " + d.Double + ", payload " + d.Bytes
	postgres := d.Placeholder(2) == "$2"
	if postgres {
		// What ran the insert: COPY, not INSERT.
		cols += ", how TEXT DEFAULT current_query()"
	}
	tbl := table(t, m, tg, "copy", cols)
	columns := []string{"id", "name", "score", "payload"}
	count := func(q dbm.Querier) int64 {
		t.Helper()
		n, err := dbm.One[int64](ctx, q, "SELECT count(*) FROM "+tbl)
		if err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}
	load := func(rows iter.Seq2[[]any, error]) (n int64, err error) {
		err = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			n, err = tx.CopyFrom(ctx, tbl, columns, rows)
			return err
		})
		return n, err
	}

	t.Run("no rows", func(t *testing.T) {
		if n, err := load(dbm.CopyRows(nil)); err != nil || n != 0 {
			t.Errorf("CopyFrom(no rows) = %d, %v; want 0, nil", n, err)
		}
		if n := count(m); n != 0 {
			t.Errorf("%d rows after copying none", n)
		}
	})

	t.Run("rows with NULLs", func(t *testing.T) {
		if n, err := load(dbm.CopyRows(copyRows(1, 3))); err != nil || n != 3 {
			t.Fatalf("CopyFrom(3 rows) = %d, %v; want 3, nil", n, err)
		}
		type row struct {
			ID      int64          `db:"id"`
			Name    sql.NullString `db:"name"`
			Score   float64        `db:"score"`
			Payload []byte         `db:"payload"`
		}
		got, err := dbm.Select[row](ctx, m, "SELECT id, name, score, payload FROM "+tbl+" ORDER BY id")
		if err != nil || len(got) != 3 {
			t.Fatalf("read back: %v, %v", got, err)
		}
		if got[0].Name.String != "n1" || got[0].Score != 0.5 || string(got[0].Payload) != "\x01\x00\xff" {
			t.Errorf("row 1 read back as %+v", got[0])
		}
		if got[2].Name.Valid || got[2].Payload != nil || got[2].Score != 1.5 {
			t.Errorf("row 3 (NULL name and payload) read back as %+v", got[2])
		}
		if postgres {
			how, err := dbm.One[string](ctx, m, "SELECT how FROM "+tbl+" WHERE id = 1")
			if err != nil || !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(how)), "COPY") {
				t.Errorf("the rows were loaded by %q (%v), want a COPY", how, err)
			}
		}
	})

	t.Run("more rows than one statement takes", func(t *testing.T) {
		// 4 columns x 20000 rows: 80000 values, more than the 65535 (MySQL,
		// PostgreSQL) and 32766 (SQLite) placeholders a statement takes.
		const n = 20000
		before := count(m)
		if got, err := load(dbm.CopyRows(copyRows(1000, n))); err != nil || got != n {
			t.Fatalf("CopyFrom(%d rows) = %d, %v", n, got, err)
		}
		if c := count(m); c != before+n {
			t.Errorf("%d rows after copying %d into %d", c, n, before)
		}
		sum, err := dbm.One[int64](ctx, m, "SELECT sum(id) FROM "+tbl+" WHERE id >= 1000")
		if want := int64(n*1000 + n*(n-1)/2); err != nil || sum != want {
			t.Errorf("sum(id) = %d, %v; want %d", sum, err, want)
		}
	})

	t.Run("a row of the wrong length loads nothing", func(t *testing.T) {
		before := count(m)
		rows := copyRows(100, 3)
		rows = append(rows, []any{int64(200), "short"})
		err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
			_, err := tx.CopyFrom(ctx, tbl, columns, dbm.CopyRows(rows))
			if !errors.Is(err, dbm.ErrInvalidArgument) || !strings.Contains(err.Error(), "row 3 has 2 values, want 4") {
				t.Errorf("CopyFrom with row 3 short: %v, want ErrInvalidArgument naming row 3", err)
			}
			// Nothing of the load is left in the transaction, which goes on.
			if n := count(tx); n != before {
				t.Errorf("inside the transaction after the failed load: %d rows, want %d", n, before)
			}
			_, err = tx.Exec(ctx, "INSERT INTO "+tbl+" (id, name, score, payload) VALUES (?, ?, ?, ?)", 300, "after", 1.0, nil)
			return err
		})
		if err != nil {
			t.Fatalf("the transaction could not go on after the failed load: %v", err)
		}
		if n := count(m); n != before+1 {
			t.Errorf("after commit: %d rows, want %d", n, before+1)
		}
	})

	t.Run("an error from rows stops the load", func(t *testing.T) {
		before := count(m)
		boom := errors.New("source broke")
		src := func(yield func([]any, error) bool) {
			for _, r := range copyRows(500, 5) {
				if !yield(r, nil) {
					return
				}
			}
			yield(nil, boom)
		}
		if _, err := load(src); !errors.Is(err, boom) || !strings.Contains(err.Error(), "row 5") {
			t.Errorf("CopyFrom with a failing source: %v, want the source's error at row 5", err)
		}
		if n := count(m); n != before {
			t.Errorf("%d rows after a failed load, want %d", n, before)
		}
	})

	t.Run("a duplicate key fails the load and leaves nothing", func(t *testing.T) {
		before := count(m)
		if _, err := load(dbm.CopyRows(copyRows(30_000, 2_000))); err != nil {
			t.Fatal(err)
		}
		_, err := load(dbm.CopyRows(copyRows(31_900, 200))) // 31900..32099 overlaps 30000..31999
		if !errors.Is(err, dbm.ErrUniqueViolation) {
			t.Errorf("CopyFrom over existing keys: %v, want ErrUniqueViolation", err)
		}
		if n := count(m); n != before+2_000 {
			t.Errorf("%d rows, want %d", n, before+2_000)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		tx, err := m.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for _, c := range []struct {
			table   string
			columns []string
			rows    iter.Seq2[[]any, error]
			arg     string
		}{
			{"", columns, dbm.CopyRows(nil), "table"},
			{"a.b.c", columns, dbm.CopyRows(nil), "table"},
			{tbl, nil, dbm.CopyRows(nil), "columns"},
			{tbl, []string{"id", ""}, dbm.CopyRows(nil), "columns[1]"},
			{tbl, []string{"id", "id"}, dbm.CopyRows(nil), "columns"},
			{tbl, columns, nil, "rows"},
		} {
			_, err := tx.CopyFrom(ctx, c.table, c.columns, c.rows)
			if !errors.Is(err, dbm.ErrInvalidArgument) || !strings.Contains(err.Error(), "invalid "+c.arg+":") {
				t.Errorf("CopyFrom(%q, %q, ...) = %v, want ErrInvalidArgument naming %s", c.table, c.columns, err, c.arg)
			}
		}
		// A column the table does not have is the server's error.
		if _, err := tx.CopyFrom(ctx, tbl, []string{"id", "nope"}, dbm.CopyRows([][]any{{1, 2}})); err == nil {
			t.Error("CopyFrom into a missing column: nil error")
		}
	})
	assertIdle(t, m)
}
