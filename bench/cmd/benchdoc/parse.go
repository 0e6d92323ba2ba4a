package main

import (
	"io"
	"slices"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// Set is the results of one `go test -bench` run, in order of appearance.
type Set struct {
	Benchmarks []*Benchmark
}

// Benchmark is one top-level benchmark (BenchmarkScan -> "Scan"). Its
// sub-benchmarks are named key=value parts; the "impl" part names the
// implementation, the others form the row.
type Benchmark struct {
	Name  string
	Pkg   string   // the package it ran in
	Rows  []string // "rows=100", "driver=pgx/rows=1"
	Impls []string
	// samples[row][impl][unit] holds every run's value
	samples map[string]map[string]map[string][]float64
}

// Parse reads go test -bench output.
func Parse(r io.Reader) (*Set, error) {
	s := &Set{}
	byName := map[string]*Benchmark{}
	br := benchfmt.NewReader(r, "")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error or a unit line: not a result
		}
		base, parts := res.Name.Parts()
		name := strings.TrimPrefix(string(base), "Benchmark")
		impl := ""
		var row []string
		for _, part := range parts {
			p := strings.TrimPrefix(string(part), "/")
			if strings.HasPrefix(p, "-") { // GOMAXPROCS suffix
				continue
			}
			if v, ok := strings.CutPrefix(p, "impl="); ok {
				impl = v
				continue
			}
			row = append(row, p)
		}
		if impl == "" {
			continue // not a comparison
		}
		pkg := res.GetConfig("pkg")
		b := byName[pkg+"."+name]
		if b == nil {
			b = &Benchmark{Name: name, Pkg: pkg, samples: map[string]map[string]map[string][]float64{}}
			byName[pkg+"."+name] = b
			s.Benchmarks = append(s.Benchmarks, b)
		}
		rowName := strings.Join(row, "/")
		if !slices.Contains(b.Rows, rowName) {
			b.Rows = append(b.Rows, rowName)
			b.samples[rowName] = map[string]map[string][]float64{}
		}
		if !slices.Contains(b.Impls, impl) {
			b.Impls = append(b.Impls, impl)
		}
		units := b.samples[rowName][impl]
		if units == nil {
			units = map[string][]float64{}
			b.samples[rowName][impl] = units
		}
		for _, v := range res.Values {
			units[v.Unit] = append(units[v.Unit], v.Value)
		}
	}
	return s, br.Err()
}

// Baseline is the implementation the others are compared with: "hand" (the
// database/sql loop a user writes), else "sql" (plain database/sql), else
// "plain" (the manager without an optional feature), else the first.
func (b *Benchmark) Baseline() string {
	for _, want := range []string{"hand", "sql", "plain"} {
		if slices.Contains(b.Impls, want) {
			return want
		}
	}
	return b.Impls[0]
}

// Median returns the median of the row's samples for impl in unit, and
// whether there were any.
func (b *Benchmark) Median(row, impl, unit string) (float64, bool) {
	v := slices.Clone(b.samples[row][impl][unit])
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// Ratio is impl's median over base's median in unit for the row.
func (b *Benchmark) Ratio(row, impl, base, unit string) (float64, bool) {
	x, ok1 := b.Median(row, impl, unit)
	y, ok2 := b.Median(row, base, unit)
	if !ok1 || !ok2 || y == 0 {
		return 0, false
	}
	return x / y, true
}

// HasUnit reports whether any result of b has a value in unit (as
// benchfmt tidies it: "cpu-ns/op" is read as "cpu-sec/op").
func (b *Benchmark) HasUnit(unit string) bool {
	for _, impls := range b.samples {
		for _, units := range impls {
			if len(units[unit]) > 0 {
				return true
			}
		}
	}
	return false
}

// Runs is the number of samples behind a row's baseline time.
func (b *Benchmark) Runs(row string) int {
	return len(b.samples[row][b.Baseline()]["sec/op"])
}
