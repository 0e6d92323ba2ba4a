package conformance

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// testScanSQLRows: dbm.ScanAll and dbm.ScanOne read *sql.Rows opened
// without the manager, map them as the manager does, and close them.
func testScanSQLRows(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	tbl := peopleTable(t, m, tg)
	ctx := context.Background()
	query := func(q string, args ...any) *sql.Rows {
		t.Helper()
		rows, err := m.DB().QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return rows
	}
	all := "SELECT id, name, age FROM " + tbl + " ORDER BY id"

	var people []person
	if err := dbm.ScanAll(query(all), &people); err != nil || len(people) != 3 || people[1] != (person{2, "grace", 85}) {
		t.Errorf("ScanAll(*[]T) = %+v, %v", people, err)
	}
	var maps []map[string]any
	if err := dbm.ScanAll(query(all), &maps); err != nil || len(maps) != 3 || maps[0]["name"] != "ada" {
		t.Errorf("ScanAll(*[]map) = %v, %v", maps, err)
	}
	var p *person
	if err := dbm.ScanOne(query("SELECT id, name, age FROM "+tbl+" WHERE id = "+tg.Dialect.Placeholder(1), 3), &p); err != nil || p == nil || *p != (person{3, "alan", 41}) {
		t.Errorf("ScanOne(**T) = %v, %v", p, err)
	}
	var name string
	if err := dbm.ScanOne(query("SELECT name FROM "+tbl+" WHERE id = 99"), &name); !errors.Is(err, dbm.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("ScanOne of no row: %v, want ErrNotFound and sql.ErrNoRows", err)
	}
	if err := dbm.ScanAll(query("SELECT id, name, age, 1 AS extra FROM "+tbl), &people); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Errorf("ScanAll with an unknown column: %v, want ErrUnknownColumn", err)
	}
	if err := dbm.ScanAll(query("SELECT id, name, age, id FROM "+tbl), &people); !errors.Is(err, dbm.ErrDuplicateColumn) {
		t.Errorf("ScanAll with id twice: %v, want ErrDuplicateColumn", err)
	}
	if err := dbm.ScanOne(query(all), people); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("ScanOne into a non-pointer: %v, want ErrInvalidArgument", err)
	}
	// Every call closed its rows: nothing of the pool is in use.
	if n := m.DB().Stats().InUse; n != 0 {
		t.Errorf("%d connections in use after ScanAll and ScanOne, want 0", n)
	}
	assertIdle(t, m)
}
