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
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
	var kept string
	if out != "" {
		old, err := os.ReadFile(out)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		kept = handWritten(string(old))
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	Render(bw, m, cmd, sets, statText)
	if kept != "" {
		bw.WriteString("\n" + kept + "\n")
	}
	return bw.Flush()
}

// The markers of a section written by hand in the output file: benchdoc
// keeps it, from handStart to handEnd, at the end of the file it rewrites.
const (
	handStart = "<!-- hand-written: benchdoc keeps this section -->"
	handEnd   = "<!-- end of hand-written section -->"
)

// handWritten returns the hand-written section of doc, markers included,
// or "" when it has none.
func handWritten(doc string) string {
	i := strings.Index(doc, handStart)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], handEnd)
	if j < 0 {
		return doc[i:] // unterminated: keep the rest rather than lose it
	}
	return doc[i : i+j+len(handEnd)]
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
