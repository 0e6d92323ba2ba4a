package conformance

import (
	"bytes"
	"context"
	"database/sql"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// typesTable creates the table every type test uses: one nullable column per
// type.
func typesTable(t *testing.T, m *dbm.Manager, tg Target) string {
	d := tg.Dialect
	return table(t, m, tg, "types", "id "+d.BigInt+" PRIMARY KEY, "+
		"n_int "+d.BigInt+" NULL, n_float "+d.Double+" NULL, flag "+d.Bool+" NULL, "+
		"txt "+d.Text+" NULL, bin "+d.Bytes+" NULL, at_tz "+d.TimestampTZ+" NULL, "+
		"at_naive "+d.Timestamp+" NULL, amount "+d.Decimal+" NULL")
}

const typesColumns = "id, n_int, n_float, flag, txt, bin, at_tz, at_naive, amount"

func insertTypes(t *testing.T, m *dbm.Manager, tg Target, tbl string, args ...any) {
	t.Helper()
	q := "INSERT INTO " + tbl + " (" + typesColumns + ") VALUES (" + ph(tg.Dialect, 9) + ")"
	if _, err := m.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("insert: %v", err)
	}
}

type typesRow struct {
	ID      int64     `db:"id"`
	Int     int64     `db:"n_int"`
	Float   float64   `db:"n_float"`
	Flag    bool      `db:"flag"`
	Text    string    `db:"txt"`
	Bin     []byte    `db:"bin"`
	AtTZ    time.Time `db:"at_tz"`
	AtNaive time.Time `db:"at_naive"`
	Amount  string    `db:"amount"`
}

// sameDecimal compares decimals by value: SQLite keeps DECIMAL as a binary
// float and drops trailing zeros ("12.50" comes back as "12.5").
func sameDecimal(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// A UTC time with microseconds: every target keeps microseconds.
var utcTime = time.Date(2024, 2, 29, 23, 59, 58, 123456000, time.UTC)

func testTypes(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := typesTable(t, m, tg)
	want := []typesRow{
		{1, math.MaxInt64, math.Pi, true, "héllo, 世界 🎉 'q' \"dq\" ? \\ %", []byte{0, 1, 2, 0xff, '\\', '\'', 0x80}, utcTime, utcTime, "12345.6789"},
		{2, math.MinInt64, -1e300, false, "x", []byte{0}, utcTime.Add(-time.Hour * 24 * 365 * 30), utcTime.Add(time.Microsecond), "-0.0001"},
		{3, 0, 2.5e-300, true, "line1\nline2\ttab", bytes.Repeat([]byte{0xab}, 300), utcTime, utcTime, "0"},
	}
	for _, r := range want {
		insertTypes(t, m, tg, tbl, r.ID, r.Int, r.Float, r.Flag, r.Text, r.Bin, r.AtTZ, r.AtNaive, r.Amount)
	}
	ctx := context.Background()
	got, err := dbm.Select[typesRow](ctx, m, "SELECT "+typesColumns+" FROM "+tbl+" ORDER BY id")
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.Int != w.Int || g.Float != w.Float || g.Flag != w.Flag || g.Text != w.Text {
			t.Errorf("row %d: got id=%d int=%d float=%g flag=%v text=%q, want %d %d %g %v %q",
				w.ID, g.ID, g.Int, g.Float, g.Flag, g.Text, w.ID, w.Int, w.Float, w.Flag, w.Text)
		}
		if !bytes.Equal(g.Bin, w.Bin) {
			t.Errorf("row %d: bytes = %x, want %x", w.ID, g.Bin, w.Bin)
		}
		if !g.AtTZ.Equal(w.AtTZ) || !g.AtNaive.Equal(w.AtNaive) {
			t.Errorf("row %d: times = %v / %v, want %v / %v", w.ID, g.AtTZ, g.AtNaive, w.AtTZ, w.AtNaive)
		}
		if !sameDecimal(g.Amount, w.Amount) {
			t.Errorf("row %d: decimal = %q, want %s", w.ID, g.Amount, w.Amount)
		}
	}

	// Scalars straight from the server, one type at a time.
	if v, err := dbm.One[int64](ctx, m, "SELECT n_int FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 2); err != nil || v != math.MinInt64 {
		t.Errorf("One[int64] = %d, %v; want %d", v, err, int64(math.MinInt64))
	}
	if v, err := dbm.One[bool](ctx, m, "SELECT flag FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 1); err != nil || !v {
		t.Errorf("One[bool] = %v, %v; want true", v, err)
	}
	if v, err := dbm.One[[]byte](ctx, m, "SELECT bin FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 1); err != nil || !bytes.Equal(v, want[0].Bin) {
		t.Errorf("One[[]byte] = %x, %v; want %x", v, err, want[0].Bin)
	}
	// A boolean argument finds the row it stored (MySQL: TINYINT(1)).
	if n, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl+" WHERE flag = "+tg.Dialect.Placeholder(1), true); err != nil || n != 2 {
		t.Errorf("count(flag = true) = %d, %v; want 2", n, err)
	}
	// Maps: text is a string, bytes stay []byte.
	var maps []map[string]any
	if err := m.ExecuteQuery(ctx, &maps, "SELECT txt, bin FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 1); err != nil {
		t.Fatalf("ExecuteQuery into maps: %v", err)
	}
	if s, ok := maps[0]["txt"].(string); !ok || s != want[0].Text {
		t.Errorf("map txt = %#v, want the string %q", maps[0]["txt"], want[0].Text)
	}
	if b, ok := maps[0]["bin"].([]byte); !ok || !bytes.Equal(b, want[0].Bin) {
		t.Errorf("map bin = %#v, want []byte %x", maps[0]["bin"], want[0].Bin)
	}
	assertIdle(t, m)
}

func testTimestamps(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := typesTable(t, m, tg)
	ctx := context.Background()
	d := tg.Dialect
	// 1: UTC in both columns; 2: the same instant given in +05:30.
	kolkata := time.FixedZone("IST", 5*3600+1800)
	insertTypes(t, m, tg, tbl, 1, nil, nil, nil, nil, nil, utcTime, utcTime, nil)
	insertTypes(t, m, tg, tbl, 2, nil, nil, nil, nil, nil, utcTime.In(kolkata), utcTime.In(kolkata), nil)

	type times struct {
		ID      int64     `db:"id"`
		AtTZ    time.Time `db:"at_tz"`
		AtNaive time.Time `db:"at_naive"`
		EpochTZ int64     `db:"epoch_tz"`
		EpochNv int64     `db:"epoch_naive"`
	}
	rows, err := dbm.Select[times](ctx, m, "SELECT id, at_tz, at_naive, "+d.Epoch("at_tz")+" AS epoch_tz, "+
		d.Epoch("at_naive")+" AS epoch_naive FROM "+tbl+" ORDER BY id")
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	for _, r := range rows {
		// With time zone: always the same instant.
		if !r.AtTZ.Equal(utcTime) {
			t.Errorf("row %d: timestamp with time zone = %v, want the instant %v", r.ID, r.AtTZ, utcTime)
		}
		// The server's own reading of the stored value: what SQL functions,
		// comparisons and other clients see.
		if r.EpochTZ != utcTime.Unix() {
			t.Errorf("row %d: the server reads the timestamp with time zone as epoch %d, want %d", r.ID, r.EpochTZ, utcTime.Unix())
		}
	}
	if r := rows[0]; !r.AtNaive.Equal(utcTime) || r.EpochNv != utcTime.Unix() {
		t.Errorf("UTC into timestamp without time zone: got %v (epoch %d), want %v (%d)", r.AtNaive, r.EpochNv, utcTime, utcTime.Unix())
	}
	// Without time zone and a non-UTC time: the documented difference.
	wantNaive := utcTime
	if d.NaiveKeepsWallClock {
		wall := utcTime.In(kolkata)
		wantNaive = time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), time.UTC)
	}
	if r := rows[1]; !r.AtNaive.Equal(wantNaive) {
		t.Errorf("+05:30 into timestamp without time zone = %v, want %v (NaiveKeepsWallClock=%v)", r.AtNaive, wantNaive, d.NaiveKeepsWallClock)
	}
	assertIdle(t, m)
}

func testNulls(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := typesTable(t, m, tg)
	ctx := context.Background()
	insertTypes(t, m, tg, tbl, 1, nil, nil, nil, nil, nil, nil, nil, nil)
	insertTypes(t, m, tg, tbl, 2, 7, 1.5, true, "t", []byte("b"), utcTime, utcTime, "2.5")

	type ptrs struct {
		ID      int64      `db:"id"`
		Int     *int64     `db:"n_int"`
		Float   *float64   `db:"n_float"`
		Flag    *bool      `db:"flag"`
		Text    *string    `db:"txt"`
		Bin     []byte     `db:"bin"`
		AtTZ    *time.Time `db:"at_tz"`
		AtNaive *time.Time `db:"at_naive"`
		Amount  *string    `db:"amount"`
	}
	type nulls struct {
		ID      int64            `db:"id"`
		Int     sql.NullInt64    `db:"n_int"`
		Float   sql.NullFloat64  `db:"n_float"`
		Flag    sql.NullBool     `db:"flag"`
		Text    sql.NullString   `db:"txt"`
		Bin     sql.Null[[]byte] `db:"bin"`
		AtTZ    sql.NullTime     `db:"at_tz"`
		AtNaive sql.NullTime     `db:"at_naive"`
		Amount  sql.NullString   `db:"amount"`
	}
	q := "SELECT " + typesColumns + " FROM " + tbl + " ORDER BY id"
	p, err := dbm.Select[ptrs](ctx, m, q)
	if err != nil || len(p) != 2 {
		t.Fatalf("Select into pointers: %d rows, %v", len(p), err)
	}
	if n := p[0]; n.Int != nil || n.Float != nil || n.Flag != nil || n.Text != nil || n.Bin != nil || n.AtTZ != nil || n.AtNaive != nil || n.Amount != nil {
		t.Errorf("NULLs into pointers: %+v, want every field nil", n)
	}
	if v := p[1]; v.Int == nil || *v.Int != 7 || v.Float == nil || *v.Float != 1.5 || v.Flag == nil || !*v.Flag ||
		v.Text == nil || *v.Text != "t" || string(v.Bin) != "b" || v.AtTZ == nil || !v.AtTZ.Equal(utcTime) ||
		v.AtNaive == nil || !v.AtNaive.Equal(utcTime) || v.Amount == nil || !sameDecimal(*v.Amount, "2.5") {
		t.Errorf("values into pointers: %+v", v)
	}
	n, err := dbm.Select[nulls](ctx, m, q)
	if err != nil || len(n) != 2 {
		t.Fatalf("Select into sql.Null*: %d rows, %v", len(n), err)
	}
	if z := n[0]; z.Int.Valid || z.Float.Valid || z.Flag.Valid || z.Text.Valid || z.Bin.Valid || z.AtTZ.Valid || z.AtNaive.Valid || z.Amount.Valid {
		t.Errorf("NULLs into sql.Null*: %+v, want every field invalid", z)
	}
	if v := n[1]; v.Int != (sql.NullInt64{Int64: 7, Valid: true}) || v.Float != (sql.NullFloat64{Float64: 1.5, Valid: true}) ||
		v.Flag != (sql.NullBool{Bool: true, Valid: true}) || v.Text != (sql.NullString{String: "t", Valid: true}) ||
		!v.Bin.Valid || string(v.Bin.V) != "b" || !v.AtTZ.Valid || !v.AtTZ.Time.Equal(utcTime) ||
		!v.AtNaive.Valid || !v.AtNaive.Time.Equal(utcTime) || !v.Amount.Valid || !sameDecimal(v.Amount.String, "2.5") {
		t.Errorf("values into sql.Null*: %+v", v)
	}
	// A NULL into a plain value is a scan error, not a zero value.
	if _, err := dbm.One[int64](ctx, m, "SELECT n_int FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 1); err == nil {
		t.Error("NULL into int64 succeeded, want a scan error")
	}
	// NULL arguments: nil, a nil pointer and an invalid sql.Null* all store NULL.
	var nilText *string
	if _, err := m.Exec(ctx, "UPDATE "+tbl+" SET txt = "+tg.Dialect.Placeholder(1)+", n_int = "+tg.Dialect.Placeholder(2)+
		" WHERE id = "+tg.Dialect.Placeholder(3), nilText, sql.NullInt64{}, 2); err != nil {
		t.Fatalf("UPDATE with NULL arguments: %v", err)
	}
	if c, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM "+tbl+" WHERE txt IS NULL AND n_int IS NULL"); err != nil || c != 2 {
		t.Errorf("rows with NULL txt and n_int = %d, %v; want 2", c, err)
	}
	assertIdle(t, m)
}
