package dbm_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// rawRows runs query on the manager's *sql.DB directly: rows from
// elsewhere, as ScanAll and ScanOne get them.
func rawRows(t *testing.T, m *dbm.Manager, query string) *sql.Rows {
	t.Helper()
	rows, err := m.DB().QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// wantReleased fails when a connection of m's pool is still in use: ScanAll
// and ScanOne close the rows whatever happens.
func wantReleased(t *testing.T, m *dbm.Manager, what string) {
	t.Helper()
	if n := m.DB().Stats().InUse; n != 0 {
		t.Errorf("%s: %d connections in use after it returned, want 0 (rows not closed)", what, n)
	}
}

func TestScanAllAndScanOne(t *testing.T) {
	m := newSQLite(t)
	seedOrders(t, m)
	const all = "SELECT id, user_id FROM orders ORDER BY id"

	var orders []dupOrder
	if err := dbm.ScanAll(rawRows(t, m, all), &orders); err != nil || len(orders) != 2 || orders[1] != (dupOrder{2, 7}) {
		t.Errorf("ScanAll(*[]T) = %+v, %v", orders, err)
	}
	wantReleased(t, m, "ScanAll")
	var ptrs []*dupOrder
	if err := dbm.ScanAll(rawRows(t, m, all), &ptrs); err != nil || len(ptrs) != 2 || *ptrs[0] != (dupOrder{1, 7}) {
		t.Errorf("ScanAll(*[]*T) = %v, %v", ptrs, err)
	}
	var maps []map[string]any
	if err := dbm.ScanAll(rawRows(t, m, all), &maps); err != nil || len(maps) != 2 || maps[0]["user_id"] != int64(7) {
		t.Errorf("ScanAll(*[]map) = %v, %v", maps, err)
	}
	var ids []int64
	if err := dbm.ScanAll(rawRows(t, m, "SELECT id FROM orders ORDER BY id"), &ids); err != nil || len(ids) != 2 || ids[1] != 2 {
		t.Errorf("ScanAll(*[]int64) = %v, %v", ids, err)
	}
	none := []dupOrder{{9, 9}}
	if err := dbm.ScanAll(rawRows(t, m, all+" LIMIT 0"), &none); err != nil || none == nil || len(none) != 0 {
		t.Errorf("ScanAll of no rows = %#v, %v; want an empty, non-nil slice", none, err)
	}

	var o dupOrder
	if err := dbm.ScanOne(rawRows(t, m, all), &o); err != nil || o != (dupOrder{1, 7}) {
		t.Errorf("ScanOne = %+v, %v; want the first row", o, err)
	}
	wantReleased(t, m, "ScanOne")
	var op *dupOrder
	if err := dbm.ScanOne(rawRows(t, m, all), &op); err != nil || op == nil || *op != (dupOrder{1, 7}) {
		t.Errorf("ScanOne(**T) = %v, %v", op, err)
	}
	var email string
	if err := dbm.ScanOne(rawRows(t, m, "SELECT email FROM users"), &email); err != nil || email != "ada@example.com" {
		t.Errorf("ScanOne(*string) = %q, %v", email, err)
	}
	var mp map[string]any
	if err := dbm.ScanOne(rawRows(t, m, all), &mp); err != nil || mp["id"] != int64(1) {
		t.Errorf("ScanOne(*map) = %v, %v", mp, err)
	}
	err := dbm.ScanOne(rawRows(t, m, all+" LIMIT 0"), &o)
	if !errors.Is(err, dbm.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("ScanOne of no row = %v, want ErrNotFound and sql.ErrNoRows", err)
	}
	wantReleased(t, m, "ScanOne of no row")
}

func TestScanAllAndScanOneMappingErrors(t *testing.T) {
	m := newSQLite(t)
	seedOrders(t, m)
	for _, c := range []struct {
		name, query string
		want        error
		col         string
	}{
		{"unknown column", "SELECT id, user_id, 'x' AS note FROM orders", dbm.ErrUnknownColumn, "note"},
		{"duplicate column", dupJoin, dbm.ErrDuplicateColumn, "id"},
		{"NULL into int64", "SELECT id, NULL AS user_id FROM orders", dbm.ErrNullValue, "user_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s []dupOrder
			var one dupOrder
			for fn, err := range map[string]error{
				"ScanAll": dbm.ScanAll(rawRows(t, m, c.query), &s),
				"ScanOne": dbm.ScanOne(rawRows(t, m, c.query), &one),
			} {
				var se *dbm.ScanError
				if !errors.Is(err, c.want) || !errors.As(err, &se) || se.Column != c.col {
					t.Errorf("%s: %v, want a *ScanError for column %q matching %v", fn, err, c.col, c.want)
				}
			}
			if len(s) != 0 {
				t.Errorf("ScanAll left %d elements in dest after an error", len(s))
			}
			wantReleased(t, m, c.name)
		})
	}
}

func TestScanAllAndScanOneBadInput(t *testing.T) {
	m := newSQLite(t)
	seedOrders(t, m)
	const q = "SELECT id, user_id FROM orders"
	var s []dupOrder
	var o dupOrder
	var nilSlice *[]dupOrder
	for _, c := range []struct {
		name string
		call func() error
		arg  string
	}{
		{"ScanAll nil rows", func() error { return dbm.ScanAll(nil, &s) }, "rows"},
		{"ScanOne nil rows", func() error { return dbm.ScanOne(nil, &o) }, "rows"},
		{"ScanAll zero rows", func() error { return dbm.ScanAll(new(sql.Rows), &s) }, "rows"}, // database/sql's Close panics on it
		{"ScanOne zero rows", func() error { return dbm.ScanOne(new(sql.Rows), &o) }, "rows"},
		{"ScanAll nil dest", func() error { return dbm.ScanAll(rawRows(t, m, q), nil) }, "dest"},
		{"ScanAll non-pointer", func() error { return dbm.ScanAll(rawRows(t, m, q), s) }, "dest"},
		{"ScanAll nil pointer", func() error { return dbm.ScanAll(rawRows(t, m, q), nilSlice) }, "dest"},
		{"ScanAll pointer to a struct", func() error { return dbm.ScanAll(rawRows(t, m, q), &o) }, "dest"},
		{"ScanAll []chan", func() error { var c []chan int; return dbm.ScanAll(rawRows(t, m, q), &c) }, "dest"},
		{"ScanOne nil dest", func() error { return dbm.ScanOne(rawRows(t, m, q), nil) }, "dest"},
		{"ScanOne non-pointer", func() error { return dbm.ScanOne(rawRows(t, m, q), o) }, "dest"},
		{"ScanOne *func", func() error { var f func(); return dbm.ScanOne(rawRows(t, m, q), &f) }, "dest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var ae *dbm.ArgumentError
			if !errors.As(err, &ae) || !errors.Is(err, dbm.ErrInvalidArgument) || ae.Arg != c.arg || !strings.HasPrefix(ae.Func, "Scan") {
				t.Errorf("%v, want an *ArgumentError naming %q", err, c.arg)
			}
			wantReleased(t, m, c.name)
		})
	}
}

// A driver error while reading is classified as the manager would, with
// the driver's error reachable.
func TestScanAllClassifiesDriverErrors(t *testing.T) {
	db, mock, err := sqlmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cause := &stateErr{"40001"}
	mock.ExpectQuery("SELECT").WillReturnRows(sqlmock.NewRows([]string{"id", "user_id"}).AddRow(1, 7).AddRow(2, 7).RowError(1, cause))
	rows, err := db.Query("SELECT id, user_id FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	var s []dupOrder
	err = dbm.ScanAll(rows, &s)
	var se *stateErr
	var de *dbm.Error
	if !errors.Is(err, dbm.ErrSerialization) || !errors.As(err, &se) || !errors.As(err, &de) || de.Op != "scan" || len(s) != 0 {
		t.Errorf("ScanAll = %v (dest %v), want a *dbm.Error matching ErrSerialization with the driver's error", err, s)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
