package sqltext

import (
	"slices"
	"testing"
)

// names returns the named parameters Params finds in q.
func names(q string) []string {
	var out []string
	for _, p := range Params(q, true) {
		if q[p.Start] != ':' || q[p.Start+1:p.End] != p.Name {
			panic("bad span for " + p.Name)
		}
		out = append(out, p.Name)
	}
	return out
}

func TestParamsNamed(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"SELECT * FROM t WHERE id = :id", []string{"id"}},
		{"UPDATE t SET a = :a, b=:b WHERE id=:id", []string{"a", "b", "id"}},
		{"INSERT INTO t (a, b) VALUES (:a,:b)", []string{"a", "b"}},
		{"SELECT :author.name, :_x1", []string{"author.name", "_x1"}},
		{"SELECT :名前, :あ", []string{"名前", "あ"}}, // sqlx issue 983: Unicode names
		// sqlx issue 91/428: PostgreSQL casts are left alone.
		{"SELECT (d.categories->>0)::int AS category_id FROM some_table d WHERE id =:id", []string{"id"}},
		// sqlx issue 650: a cast to a row type.
		{"SELECT (1, 'John')::my_table", nil},
		// sqlx issue 956: a cast of a column, then a parameter.
		{"SELECT DISTINCT t.path::text AS catalog_path FROM t WHERE t.company_id = :company_id", []string{"company_id"}},
		// sqlx issue 983: a parameter with a cast right after it.
		{"SELECT :id::int, :boundary::jsonb", []string{"id", "boundary"}},
		// Colons in literals, identifiers, comments and dollar quotes (sqlx issues 206, 252, 368, 442).
		{"SELECT '2016-01-01 12:01:01' AS a, ':nope' WHERE x = :x", []string{"x"}},
		{"UPDATE services SET status = :status WHERE services.id = '192.168.11.8:3306'", []string{"status"}},
		{`SELECT "a:b" FROM t WHERE y = :y`, []string{"y"}},
		{"SELECT `d.ns:col` FROM t WHERE z = :z", []string{"z"}},
		{"SELECT 1 -- :comment\n, :after", []string{"after"}},
		{"SELECT /* :block */ :after", []string{"after"}},
		{"SELECT $$ :body $$, $fn$ :also $fn$, :real", []string{"real"}},
		{"SELECT E'it\\'s :not' , :yes", []string{"yes"}},
		// Not parameters: array slices, times, assignments.
		{"SELECT arr[1:5], arr[lo:hi], arr[:2] FROM t", nil},
		{"SET @v := 1", nil},
		{"SELECT a:b", nil},
		{":first", []string{"first"}},
		{"SELECT :", nil},
		{"SELECT : x", nil},
		{"SELECT :1", nil},
		{"SELECT :a.", []string{"a"}},
	} {
		if got := names(c.q); !slices.Equal(got, c.want) {
			t.Errorf("Params(%q, named) = %q, want %q", c.q, got, c.want)
		}
	}
}

func TestParamsPositional(t *testing.T) {
	type p struct {
		n      int
		inList bool
	}
	for _, c := range []struct {
		q    string
		want []p
	}{
		{"SELECT * FROM t WHERE id IN (?)", []p{{0, true}}},
		{"SELECT * FROM t WHERE a = ? AND id NOT in ( ? ) AND b IN (?, ?)", []p{{0, false}, {0, true}, {0, false}, {0, false}}},
		{"SELECT * FROM t WHERE id IN ($2) AND a = $1", []p{{2, true}, {1, false}}},
		{"SELECT * FROM t WHERE id = ANY($1)", []p{{1, false}}},
		{"SELECT * FROM t WHERE data ? 'k' AND id IN ($1)", []p{{1, true}}}, // jsonb ? with $n: an operator
		{"SELECT 'IN (?)', \"?\" FROM t WHERE x IN (?)", []p{{0, true}}},
		{"SELECT * FROM t WHERE (id) IN ((?))", []p{{0, false}}},
		{"SELECT * FROM t WHERE id IN(?)", []p{{0, true}}},
		{"SELECT * FROM t WHERE pin (?)", []p{{0, false}}},
	} {
		var got []p
		for _, x := range Params(c.q, false) {
			got = append(got, p{x.N, x.InList})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Params(%q) = %v, want %v", c.q, got, c.want)
		}
	}
	if ps := Params("SELECT * FROM t WHERE id IN (:ids)", true); len(ps) != 1 || !ps[0].InList {
		t.Errorf("named IN list: %+v", ps)
	}
}

func FuzzParams(f *testing.F) {
	for _, q := range []string{"SELECT :a::int, ':b' FROM t WHERE x IN (:xs)", "SELECT ? IN (?)", "SELECT $1, $$ $2 $$", "SELECT :名前"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, named := range []bool{false, true} {
			end := 0
			for _, p := range Params(q, named) {
				if p.Start < end || p.End <= p.Start || p.End > len(q) {
					t.Fatalf("Params(%q, %v): span [%d,%d) after %d", q, named, p.Start, p.End, end)
				}
				if named && (q[p.Start] != ':' || q[p.Start+1:p.End] != p.Name || p.Name == "") {
					t.Fatalf("Params(%q): %+v is not :name", q, p)
				}
				end = p.End
			}
		}
	})
}
