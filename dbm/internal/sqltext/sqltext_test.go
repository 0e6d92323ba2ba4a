package sqltext

import (
	"strconv"
	"strings"
	"testing"
)

var rebindCases = []struct {
	name, in, want string
}{
	{"none", "SELECT 1", "SELECT 1"},
	{"simple", "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
	{"ten", "VALUES (?,?,?,?,?,?,?,?,?,?)", "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"},
	{"string literal", "SELECT '?' , ?", "SELECT '?' , $1"},
	{"escaped quote", "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
	{"backslash in escape string", `SELECT E'a\'?', ?`, `SELECT E'a\'?', $1`},
	{"backslash in lower-case escape string", `SELECT e'a\'?', ?`, `SELECT e'a\'?', $1`},
	{"backslash ending a plain literal", `SELECT 'C:\', ?`, `SELECT 'C:\', $1`},
	{"identifier ending in e before a literal", `SELECT name'a\', ?`, `SELECT name'a\', $1`},
	{"quoted identifier", `SELECT "col?" FROM t WHERE x = ?`, `SELECT "col?" FROM t WHERE x = $1`},
	{"backtick identifier", "SELECT `c?` FROM t WHERE x = ?", "SELECT `c?` FROM t WHERE x = $1"},
	{"line comment", "SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
	{"block comment", "SELECT /* ? */ ?", "SELECT /* ? */ $1"},
	{"dollar quote", "SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"},
	{"tagged dollar quote", "DO $fn$ BEGIN PERFORM ?; END $fn$; SELECT ?", "DO $fn$ BEGIN PERFORM ?; END $fn$; SELECT $1"},
	{"already numbered", "SELECT data ? 'key' FROM t WHERE id = $1", "SELECT data ? 'key' FROM t WHERE id = $1"},
	{"unterminated literal", "SELECT 'abc ?", "SELECT 'abc ?"},
	{"unterminated comment", "SELECT ? /* ?", "SELECT $1 /* ?"},
	{"identifier with dollar", "SELECT a$1 FROM t WHERE x = ?", "SELECT a$1 FROM t WHERE x = $1"},
}

func TestRebind(t *testing.T) {
	for _, tc := range rebindCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Rebind(tc.in); got != tc.want {
				t.Errorf("Rebind(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRebindDoesNotAllocateWithoutPlaceholders(t *testing.T) {
	q := "SELECT id, name FROM users WHERE id = $1"
	if n := testing.AllocsPerRun(100, func() { _ = Rebind(q) }); n != 0 {
		t.Errorf("Rebind allocated %v times for a query without '?'", n)
	}
}

func TestTrim(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1;":         "SELECT 1",
		"SELECT 1 ;\n\t ":   "SELECT 1",
		"SELECT 1;;":        "SELECT 1",
		"SELECT ';'":        "SELECT ';'",
		"":                  "",
		"SELECT 1":          "SELECT 1",
		"  SELECT 1  \r\n;": "  SELECT 1",
	} {
		if got := Trim(in); got != want {
			t.Errorf("Trim(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"SELECT  *\n\tFROM   users", 100, "SELECT * FROM users"},
		{"  SELECT 1  ", 100, "SELECT 1"},
		{"SELECT abcdef", 8, "SELECT a..."},
		{"SELECT ééé", 9, "SELECT é..."},
	} {
		if got := Shorten(tc.in, tc.max); got != tc.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestShortenFastPath: a statement that needs no change is returned
// without a copy, and the fast path agrees with the general one.
func TestShortenFastPath(t *testing.T) {
	for _, q := range []string{
		"SELECT name FROM users WHERE id = $1", "SELECT  1", "SELECT 1 ", " SELECT 1", "SELECT\n1", "SELECT\t1",
		"SELECT 1\u00a0", "\u0085SELECT 1", "SELECT 'é'", "x", "", "SELECT 12345678",
	} {
		for _, max := range []int{8, 9, 200} {
			if got, want := Shorten(q, max), collapse(q, max); got != want {
				t.Errorf("Shorten(%q, %d) = %q, general path %q", q, max, got, want)
			}
		}
	}
	q := "SELECT name FROM users WHERE id = $1"
	if n := testing.AllocsPerRun(100, func() { _ = Shorten(q, 200) }); n != 0 {
		t.Errorf("Shorten of a short single-spaced statement allocates %v times", n)
	}
}

// FuzzShorten checks that the fast path always agrees with the general one.
func FuzzShorten(f *testing.F) {
	for _, q := range []string{"SELECT  *\n\tFROM   users", "  SELECT 1  ", "SELECT abcdef", "SELECT ééé", "SELECT 1"} {
		f.Add(q, 8)
		f.Add(q, 200)
	}
	f.Fuzz(func(t *testing.T, q string, max int) {
		if max < 0 || max > 1000 {
			return
		}
		if got, want := Shorten(q, max), collapse(q, max); got != want {
			t.Errorf("Shorten(%q, %d) = %q, general path %q", q, max, got, want)
		}
	})
}

// FuzzRebind checks that rebinding never panics, changes nothing but the
// placeholders, and numbers them from $1 in order.
func FuzzRebind(f *testing.F) {
	for _, tc := range rebindCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := Rebind(q)
		if got == q {
			return
		}
		marks, _ := scan(q)
		var want strings.Builder
		last := 0
		for i, at := range marks {
			if q[at] != '?' {
				t.Fatalf("mark at %d is %q, not '?'", at, q[at])
			}
			want.WriteString(q[last:at] + "$" + strconv.Itoa(i+1))
			last = at + 1
		}
		want.WriteString(q[last:])
		if got != want.String() {
			t.Fatalf("Rebind(%q) = %q, want %q", q, got, want.String())
		}
		if n := strings.Count(got, "?"); n != strings.Count(q, "?")-len(marks) {
			t.Fatalf("Rebind(%q) = %q: %d '?' left, want %d", q, got, n, strings.Count(q, "?")-len(marks))
		}
	})
}
