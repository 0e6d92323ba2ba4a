package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: example
cpu: Test CPU
BenchmarkScan/rows=1/impl=hand-2         	 100	      1000 ns/op	      900 cpu-ns/op	     592 B/op	       8 allocs/op
BenchmarkScan/rows=1/impl=hand-2         	 100	      3000 ns/op	     1000 cpu-ns/op	     592 B/op	       8 allocs/op
BenchmarkScan/rows=1/impl=hand-2         	 100	      2000 ns/op	     1100 cpu-ns/op	     592 B/op	       8 allocs/op
BenchmarkScan/rows=1/impl=Select-2       	 100	      2200 ns/op	     1200 cpu-ns/op	     504 B/op	       4 allocs/op
BenchmarkScan/rows=1/impl=Select-2       	 100	      9000 ns/op	     1200 cpu-ns/op	     504 B/op	       4 allocs/op
BenchmarkScan/rows=1/impl=Select-2       	 100	      2100 ns/op	     1300 cpu-ns/op	     504 B/op	       4 allocs/op
BenchmarkPoint/driver=pgx/impl=pgxpool-2 	 100	      500 ns/op
BenchmarkPoint/driver=pgx/impl=sql-2     	 100	      400 ns/op
BenchmarkPoint/driver=pgx/impl=dbm-2     	 100	      440 ns/op
BenchmarkLeakTracking/op=Query/impl=off-2 	 100	      1000 ns/op	     500 B/op	      10 allocs/op
BenchmarkLeakTracking/op=Query/impl=on-2  	 100	      1250 ns/op	     530 B/op	      12 allocs/op
BenchmarkOtel/db=sqlite/impl=otel-2      	 100	      1100 ns/op
BenchmarkOtel/db=sqlite/impl=plain-2     	 100	      1000 ns/op
BenchmarkOther-2                         	 100	      400 ns/op
PASS
`

func TestParseMediansAndRatios(t *testing.T) {
	s, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Benchmarks) != 4 {
		t.Fatalf("got %d benchmarks, want 4 (Other has no impl)", len(s.Benchmarks))
	}
	if o := s.Benchmarks[3]; o.Baseline() != "plain" {
		t.Errorf("baseline = %q, want plain (otel comes first but plain is the reference)", o.Baseline())
	}
	scan := s.Benchmarks[0]
	if scan.Name != "Scan" || scan.Baseline() != "hand" || strings.Join(scan.Rows, ",") != "rows=1" {
		t.Fatalf("scan = %+v", scan)
	}
	if m, _ := scan.Median("rows=1", "hand", "sec/op"); m < 1.999e-6 || m > 2.001e-6 {
		t.Errorf("median = %v, want 2µs", m)
	}
	if r, _ := scan.Ratio("rows=1", "Select", "hand", "sec/op"); r < 1.099 || r > 1.101 {
		t.Errorf("ratio = %v, want 1.10 (median 2200 over 2000, the 9000 outlier ignored)", r)
	}
	if r, _ := scan.Ratio("rows=1", "Select", "hand", "allocs/op"); r != 0.5 {
		t.Errorf("allocs ratio = %v", r)
	}
	if p := s.Benchmarks[1]; p.Baseline() != "sql" {
		t.Errorf("baseline = %q, want sql (pgxpool comes first but sql is the reference)", p.Baseline())
	}
}

func TestRender(t *testing.T) {
	s, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Render(&b, Machine{Go: "go1.26", OS: "linux/amd64", CPU: "Test CPU", Cores: 2, Date: "2026-01-01"}, "make bench", []*Set{s}, "raw stats\n")
	out := b.String()
	for _, want := range []string{
		"Test CPU, 2 cores", "`make bench`",
		"| rows | hand | Select |", "| rows=1 | 1.00 (2µs) | 1.10x |", "| rows=1 | 8 | 4 |",
		"CPU time per operation", "| rows=1 | 1.00 (1µs) | 1.20x |",
		"| driver | pgxpool | sql | dbm |", "| driver=pgx | 1.25x | 1.00 (400ns) | 1.10x |",
		"raw stats", "BenchmarkScan in package `example`",
		"| op | off | on |", "| op=Query | 1.00 (1µs) | 1.25x |", "| op=Query | - | +250 ns, +2 allocs |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunKeepsHandWrittenNotes(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "doc.md")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := NotesMarker + "\n\n## CopyFrom\n\nmeasured by hand\n"
	if err := os.WriteFile(out, []byte("# old generated part\n\n"+notes), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(out, "make bench", "", []string{in}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "old generated part") || !strings.HasSuffix(doc, notes) || !strings.Contains(doc, "| rows | hand | Select |") {
		t.Errorf("regenerated document:\n%s", doc)
	}
	if err := run(out, "make bench", "", []string{in}); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(out); strings.Count(string(b2), NotesMarker) != 1 || !strings.HasSuffix(string(b2), notes) {
		t.Errorf("second run changed the notes:\n%s", b2)
	}
}
