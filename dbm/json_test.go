package dbm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func TestJSONScan(t *testing.T) {
	type doc struct {
		A int `json:"a"`
	}
	for _, tc := range []struct {
		name string
		src  any
		want doc
		err  string
	}{
		{"bytes", []byte(`{"a":1}`), doc{1}, ""},
		{"string (SQLite TEXT)", `{"a":2}`, doc{2}, ""},
		{"NULL", nil, doc{}, ""},
		{"JSON null", "null", doc{}, ""},
		{"invalid", `{"a":`, doc{}, "dbm.JSON[dbm_test.doc]: unexpected end of JSON input"},
		{"wrong shape", `[1]`, doc{}, "cannot unmarshal array"},
		{"a time", time.Unix(0, 0), doc{}, "cannot decode a time.Time; want JSON text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := dbm.JSON[doc]{V: doc{99}} // a previous row's value must not survive
			err := j.Scan(tc.src)
			if tc.err == "" && (err != nil || j.V != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Scan(%#v) = %+v, %v; want %+v, error %q", tc.src, j.V, err, tc.want, tc.err)
			}
		})
	}
	// SQLite's numeric affinity turns a bare JSON number into a number.
	var n dbm.JSON[float64]
	if err := n.Scan(int64(42)); err != nil || n.V != 42 {
		t.Errorf("Scan(int64) = %v, %v", n.V, err)
	}
	if err := n.Scan(2.5); err != nil || n.V != 2.5 {
		t.Errorf("Scan(float64) = %v, %v", n.V, err)
	}
	var b dbm.JSON[bool]
	if err := b.Scan(true); err != nil || !b.V {
		t.Errorf("Scan(bool) = %v, %v", b.V, err)
	}
}

func TestJSONValue(t *testing.T) {
	v, err := dbm.JSON[map[string]int]{V: map[string]int{"a": 1}}.Value()
	if s, ok := v.(string); err != nil || !ok || s != `{"a":1}` {
		t.Errorf("Value = %#v, %v; want the JSON text as a string", v, err)
	}
	if v, err := (dbm.JSON[[]int]{}).Value(); err != nil || v != "null" {
		t.Errorf("Value of a nil slice = %#v, %v; want the JSON null (a nil *JSON binds SQL NULL)", v, err)
	}
	if _, err := (dbm.JSON[chan int]{V: make(chan int)}).Value(); err == nil {
		t.Error("Value of a chan: no error")
	}
}

// TestJSONErrorsOnSQLite: a column that is not JSON is a *dbm.ScanError
// naming it, with encoding/json's error reachable; a value that cannot be
// encoded fails the statement, which sends nothing.
func TestJSONErrorsOnSQLite(t *testing.T) {
	m := newSQLite(t)
	ctx := context.Background()
	type row struct {
		Doc dbm.JSON[map[string]int] `db:"doc"`
	}
	_, err := dbm.Select[row](ctx, m, "SELECT 'not json' AS doc")
	var se *dbm.ScanError
	var syn *json.SyntaxError
	if !errors.As(err, &se) || se.Column != "doc" || !errors.As(err, &syn) {
		t.Errorf("err = %v; want a *dbm.ScanError for doc wrapping a *json.SyntaxError", err)
	}
	_, err = m.Exec(ctx, "SELECT ?", dbm.JSON[func()]{V: func() {}})
	if err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Errorf("Exec with an unencodable JSON = %v", err)
	}
}

func ExampleJSON() {
	ctx := context.Background()
	m := exampleManager(ctx) // SQLite in memory
	defer m.Close()
	type Prefs struct {
		Theme string   `json:"theme"`
		Tags  []string `json:"tags"`
	}
	type Account struct {
		ID    int64                     `db:"id"`
		Prefs dbm.JSON[Prefs]           `db:"prefs"`
		Extra *dbm.JSON[map[string]int] `db:"extra"` // nil for NULL
		Raw   json.RawMessage           `db:"raw"`   // the text as stored, on every driver
	}
	if _, err := m.Exec(ctx, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, prefs TEXT NOT NULL, extra TEXT)"); err != nil {
		log.Fatal(err)
	}
	_, err := m.Exec(ctx, "INSERT INTO accounts (id, prefs, extra) VALUES (?, ?, ?)",
		1, dbm.JSON[Prefs]{V: Prefs{Theme: "dark", Tags: []string{"beta"}}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	a, err := dbm.One[Account](ctx, m, "SELECT id, prefs, extra, prefs AS raw FROM accounts WHERE id = ?", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Prefs.V.Theme, a.Prefs.V.Tags, a.Extra == nil)
	fmt.Println(string(a.Raw))
	// Output:
	// dark [beta] true
	// {"theme":"dark","tags":["beta"]}
}
