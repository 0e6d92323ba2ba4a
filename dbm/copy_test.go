package dbm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// copyStatements loads rows into table in a transaction and returns how
// many statements the manager ran for it.
func copyStatements(t *testing.T, m *dbm.Manager, table string, columns []string, rows [][]any) uint64 {
	t.Helper()
	ctx := context.Background()
	before := m.Stats().Statements
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		n, err := tx.CopyFrom(ctx, table, columns, dbm.CopyRows(rows))
		if err == nil && n != int64(len(rows)) {
			t.Errorf("CopyFrom = %d, want %d", n, len(rows))
		}
		return err
	})
	if err != nil {
		t.Fatalf("CopyFrom: %v", err)
	}
	var count int
	if err := m.Get(ctx, &count, "SELECT count(*) FROM "+table); err != nil || count != len(rows) {
		t.Errorf("count = %d, %v; want %d", count, err, len(rows))
	}
	return m.Stats().Statements - before - 1 // the count
}

func intRows(n, cols int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		r := make([]any, cols)
		for c := range r {
			r[c] = int64(i*cols + c)
		}
		rows[i] = r
	}
	return rows
}

// SQLite takes at most 32766 placeholders in a statement, and CopyFrom
// aims for statements of SQLiteChunkParams of them (faster than the
// limit): 25000 rows of 3 columns are INSERTs of SQLiteChunkParams/3 rows,
// the last one shorter (plus SAVEPOINT and RELEASE).
func TestCopyFromSQLiteChunks(t *testing.T) {
	m := newSQLite(t)
	if _, err := m.Exec(context.Background(), "CREATE TABLE c (a INTEGER, b INTEGER, c INTEGER)"); err != nil {
		t.Fatal(err)
	}
	per := dbm.SQLiteChunkParams / 3
	inserts := uint64((25000 + per - 1) / per)
	if per*3 > 32766 || inserts < 2 {
		t.Fatalf("chunks of %d rows: the test needs more than one, under the limit", per)
	}
	if got := copyStatements(t, m, "c", []string{"a", "b", "c"}, intRows(25000, 3)); got != inserts+2 {
		t.Errorf("%d statements for 25000 rows of 3 columns, want %d INSERTs + SAVEPOINT + RELEASE", got, inserts)
	}
}

// MySQL: values are sent in INSERTs of at most half of max_allowed_packet,
// however few the placeholders.
func TestCopyFromMySQLPacketLimit(t *testing.T) {
	f := &badFixture{t: t, ctx: context.Background()}
	m := f.mysql()
	ctx := context.Background()
	var packet int64
	if err := m.Get(ctx, &packet, "SELECT @@max_allowed_packet"); err != nil {
		t.Fatal(err)
	}
	table := "dbm_copy_packet_" + pgRandom(4)
	if _, err := m.Exec(ctx, "CREATE TABLE "+table+" (id BIGINT, body LONGTEXT)"); err != nil {
		t.Fatal(err)
	}
	defer m.Exec(ctx, "DROP TABLE "+table)
	// Rows of 256 KiB, 2.5 packets' worth in all: one INSERT of them all
	// (their 2 columns are far under 65535 placeholders) would be refused
	// as larger than max_allowed_packet.
	body := strings.Repeat("x", 256<<10)
	n := int(packet*5/2) / len(body)
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i), body}
	}
	got := copyStatements(t, m, table, []string{"id", "body"}, rows)
	if min := uint64(5) + 2; got < min {
		t.Errorf("%d statements for %d rows of 256 KiB with max_allowed_packet %d; want at least 5 INSERTs + SAVEPOINT + RELEASE", got, n, packet)
	}
}

// A source may hand out the same []any for every row.
func TestCopyFromSourceReusesItsRow(t *testing.T) {
	m := newSQLite(t)
	ctx := context.Background()
	if _, err := m.Exec(ctx, "CREATE TABLE r (a INTEGER, b TEXT)"); err != nil {
		t.Fatal(err)
	}
	src := func(yield func([]any, error) bool) {
		row := make([]any, 2)
		for i := range 5 {
			row[0], row[1] = int64(i), strings.Repeat("x", i)
			if !yield(row, nil) {
				return
			}
		}
	}
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.CopyFrom(ctx, "r", []string{"a", "b"}, src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dbm.Select[int64](ctx, m, "SELECT a * 10 + length(b) FROM r ORDER BY a")
	if err != nil || len(got) != 5 || got[0] != 0 || got[4] != 44 {
		t.Errorf("rows = %v, %v; want [0 11 22 33 44]", got, err)
	}
}
