package conformance

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type jsonPrefs struct {
	Theme string   `json:"theme"`
	Size  int      `json:"size"`
	Tags  []string `json:"tags"`
}

// jsonBlob is a []byte-kinded type of the caller's own.
type jsonBlob []byte

// testJSON: JSON columns round-trip through dbm.JSON[T] (bound and
// scanned), json.RawMessage and other []byte-kinded fields, on every
// driver (SQLite delivers its text as a string, where database/sql alone
// would refuse json.RawMessage).
func testJSON(t *testing.T, tg Target) {
	m := open(t, tg, nil)
	d := tg.Dialect
	tbl := table(t, m, tg, "json", "id "+d.BigInt+" PRIMARY KEY, doc "+d.JSON+" NOT NULL, opt "+d.JSON+" NULL, num "+d.JSON+" NULL")
	ctx := context.Background()
	dark := jsonPrefs{Theme: "dark", Size: 12, Tags: []string{"a", "é"}}
	light := jsonPrefs{Theme: "light 'q' \"dq\"", Tags: []string{}}
	insert := "INSERT INTO " + tbl + " (id, doc, opt, num) VALUES (?, ?, ?, ?)"
	if _, err := m.Exec(ctx, insert, 1, dbm.JSON[jsonPrefs]{V: dark}, (*dbm.JSON[jsonPrefs])(nil), dbm.JSON[int]{V: 42}); err != nil {
		t.Fatalf("insert with dbm.JSON arguments: %v", err)
	}
	raw, _ := json.Marshal(light)
	// Raw JSON text is bound as a string (lib/pq sends a []byte as bytea).
	if _, err := m.Exec(ctx, insert, 2, string(raw), &dbm.JSON[jsonPrefs]{V: dark}, nil); err != nil {
		t.Fatalf("insert with raw JSON text: %v", err)
	}

	type row struct {
		ID    int64                 `db:"id"`
		Doc   dbm.JSON[jsonPrefs]   `db:"doc"`
		Opt   *dbm.JSON[jsonPrefs]  `db:"opt"`
		Num   dbm.JSON[*int]        `db:"num"`
		Raw   json.RawMessage       `db:"raw"`
		RawP  *json.RawMessage      `db:"raw_p"`
		Blob  jsonBlob              `db:"doc_blob"`
		Plain []byte                `db:"doc_plain"`
		Any   dbm.JSON[interface{}] `db:"doc_any"`
	}
	rows, err := dbm.Select[row](ctx, m, "SELECT id, doc, opt, num, doc AS raw, opt AS raw_p, doc AS doc_blob, doc AS doc_plain, doc AS doc_any FROM "+tbl+" ORDER BY id")
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	r1, r2 := rows[0], rows[1]
	if !reflect.DeepEqual(r1.Doc.V, dark) || !reflect.DeepEqual(r2.Doc.V, light) {
		t.Errorf("dbm.JSON fields = %+v, %+v; want %+v, %+v", r1.Doc.V, r2.Doc.V, dark, light)
	}
	if r1.Opt != nil || r2.Opt == nil || !reflect.DeepEqual(r2.Opt.V, dark) {
		t.Errorf("*dbm.JSON fields = %v, %v; want nil (NULL), then %+v", r1.Opt, r2.Opt, dark)
	}
	if r1.Num.V == nil || *r1.Num.V != 42 || r2.Num.V != nil {
		t.Errorf("dbm.JSON[*int] = %v, %v; want 42, then nil (NULL)", r1.Num.V, r2.Num.V)
	}
	for i, r := range rows {
		want := []jsonPrefs{dark, light}[i]
		for name, text := range map[string][]byte{"json.RawMessage": r.Raw, "[]byte-kinded": r.Blob, "[]byte": r.Plain} {
			var got jsonPrefs
			if err := json.Unmarshal(text, &got); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("row %d: %s = %q (%v); want the JSON of %+v", r.ID, name, text, err, want)
			}
		}
		if obj, ok := r.Any.V.(map[string]any); !ok || obj["theme"] != want.Theme {
			t.Errorf("row %d: dbm.JSON[any] = %#v", r.ID, r.Any.V)
		}
	}
	if r1.RawP != nil || r2.RawP == nil || !json.Valid(*r2.RawP) {
		t.Errorf("*json.RawMessage = %v, %v; want nil (NULL), then JSON", r1.RawP, r2.RawP)
	}

	// Scalars, and the same through Iter (one element reused per row).
	byID := "SELECT doc FROM " + tbl + " WHERE id = ?"
	if v, err := dbm.One[dbm.JSON[jsonPrefs]](ctx, m, byID, 1); err != nil || !reflect.DeepEqual(v.V, dark) {
		t.Errorf("One[dbm.JSON[T]] = %+v, %v", v.V, err)
	}
	if v, err := dbm.One[json.RawMessage](ctx, m, byID, 2); err != nil || !json.Valid(v) {
		t.Errorf("One[json.RawMessage] = %q, %v", v, err)
	}
	if v, err := dbm.One[*dbm.JSON[jsonPrefs]](ctx, m, "SELECT opt FROM "+tbl+" WHERE id = ?", 1); err != nil || v != nil {
		t.Errorf("One[*dbm.JSON[T]] of NULL = %v, %v; want nil", v, err)
	}
	var themes []string
	for v, err := range dbm.Iter[dbm.JSON[jsonPrefs]](ctx, m, "SELECT doc FROM "+tbl+" ORDER BY id") {
		if err != nil {
			t.Fatalf("Iter: %v", err)
		}
		themes = append(themes, v.V.Theme)
	}
	if !reflect.DeepEqual(themes, []string{dark.Theme, light.Theme}) {
		t.Errorf("Iter[dbm.JSON[T]] themes = %q", themes)
	}
	assertIdle(t, m)
}
