// Command benchdoc turns `go test -bench` output into docs/benchmarks.md:
// the machine, the command that produced the figures, and for every
// benchmark a table of each implementation's median time and allocations
// relative to the baseline in the same run (the hand-written database/sql
// loop, "hand", or plain database/sql, "sql"). `make bench` runs it.
//
//	go run ./cmd/benchdoc -o ../docs/benchmarks.md -cmd 'make bench' \
//		-benchstat out/benchstat.txt out/dbm.txt out/bench.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "", "file to write (default: standard output)")
	cmd := flag.String("cmd", "make bench", "the command that produced the input, shown in the document")
	stat := flag.String("benchstat", "", "benchstat's output, included verbatim")
	flag.Parse()
	if err := run(*out, *cmd, *stat, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(out, cmd, stat string, inputs []string) error {
	if len(inputs) == 0 {
		return fmt.Errorf("no benchmark output files given")
	}
	var sets []*Set
	for _, name := range inputs {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		s, err := Parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sets = append(sets, s)
	}
	var statText string
	if stat != "" {
		b, err := os.ReadFile(stat)
		if err != nil {
			return err
		}
		statText = string(b)
	}
	m := Machine{Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel(), Cores: runtime.NumCPU(),
		Date: time.Now().UTC().Format("2006-01-02")}
	w := io.Writer(os.Stdout)
	var notes string
	if out != "" {
		old, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		notes = KeptNotes(string(old))
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	Render(bw, m, cmd, sets, statText)
	if notes != "" {
		bw.WriteString("\n" + notes)
	}
	return bw.Flush()
}

// NotesMarker starts the part of docs/benchmarks.md that make bench keeps:
// measurements run by hand (a benchmark too slow for every make bench, a
// figure measured against a server set up for it), each with the command
// that reproduces it.
const NotesMarker = "<!-- notes: written by hand, kept by make bench -->"

// KeptNotes returns the part of an earlier document from NotesMarker on,
// or "" when it has none.
func KeptNotes(doc string) string {
	if i := strings.Index(doc, NotesMarker); i >= 0 {
		return doc[i:]
	}
	return ""
}

// cpuModel reads the processor's name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
