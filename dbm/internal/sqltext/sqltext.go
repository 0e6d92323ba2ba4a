// Package sqltext holds the small, allocation-conscious text operations the
// manager applies to every statement: trimming, placeholder rebinding and
// shortening for logs and errors. It understands just enough SQL lexing to
// leave string literals, quoted identifiers, comments and PostgreSQL
// dollar-quoted bodies alone.
package sqltext

import (
	"strconv"
	"strings"
)

// Trim removes trailing white space and semicolons, so "SELECT 1;\n" can be
// sent through drivers that refuse an empty trailing statement. It does not
// allocate.
func Trim(q string) string {
	return strings.TrimRightFunc(q, func(r rune) bool {
		return r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r'
	})
}

// Rebind rewrites '?' placeholders as $1, $2, ... for drivers that use
// numbered placeholders. It returns q unchanged (without allocating) when q
// has no '?' outside literals, or when q already uses $n placeholders: the
// caller wrote the driver's own style and a '?' there is an operator (for
// example PostgreSQL's jsonb '?').
func Rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	marks, numbered := scan(q)
	if len(marks) == 0 || numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + len(marks)*2)
	last := 0
	for i, at := range marks {
		b.WriteString(q[last:at])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i + 1))
		last = at + 1
	}
	b.WriteString(q[last:])
	return b.String()
}

// scan returns the offsets of '?' placeholders outside literals and comments,
// and whether the statement already holds a $n placeholder.
func scan(q string) (marks []int, numbered bool) {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(q, i, c, c == '\'' && escapeString(q, i))
		case '-', '/':
			i = skipComment(q, i)
		case '$':
			if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' && !identByte(q, i-1) {
				numbered = true
				continue
			}
			if tag, ok := dollarTag(q, i); ok {
				i = skipTo(q, i+len(tag), tag)
			}
		case '?':
			marks = append(marks, i)
		}
	}
	return marks, numbered
}

// skipQuoted returns the index of the quote closing the literal opened at i.
// A doubled quote inside is an escaped quote. A backslash escapes the next
// byte only when backslashes is set: in PostgreSQL's escape strings
// (E'...'). In a plain PostgreSQL literal a backslash is an ordinary
// character (standard_conforming_strings, on by default since 9.1), so
// 'C:\' ends at its second quote.
func skipQuoted(q string, i int, quote byte, backslashes bool) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if backslashes {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j
		}
	}
	return len(q) - 1
}

// escapeString reports whether the literal opened at i is an escape string:
// E'...' or e'...', the E not being the end of a longer identifier.
func escapeString(q string, i int) bool {
	return i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && !identByte(q, i-2)
}

// skipComment returns the index of the last byte of the comment (-- or
// /* */) that starts at i, or i when none starts there.
func skipComment(q string, i int) int {
	if i+1 < len(q) {
		switch {
		case q[i] == '-' && q[i+1] == '-':
			return skipTo(q, i+2, "\n")
		case q[i] == '/' && q[i+1] == '*':
			return skipTo(q, i+2, "*/")
		}
	}
	return i
}

func skipTo(q string, from int, end string) int {
	if from > len(q) {
		return len(q) - 1
	}
	k := strings.Index(q[from:], end)
	if k < 0 {
		return len(q) - 1
	}
	return from + k + len(end) - 1
}

// dollarTag recognises a PostgreSQL dollar quote opening ($$ or $tag$) at i.
func dollarTag(q string, i int) (string, bool) {
	if identByte(q, i-1) {
		return "", false
	}
	for j := i + 1; j < len(q); j++ {
		c := q[j]
		if c == '$' {
			return q[i : j+1], true
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > i+1 && c >= '0' && c <= '9') {
			return "", false
		}
	}
	return "", false
}

func identByte(q string, i int) bool {
	if i < 0 {
		return false
	}
	c := q[i]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// short reports whether Shorten would return q unchanged: it fits in max
// bytes, is printable ASCII (so each byte is one rune, and TrimSpace keeps
// its printable ends), and holds no white space but single blanks.
func short(q string, max int) bool {
	if len(q) == 0 || len(q) > max || !printable(q[0]) || !printable(q[len(q)-1]) {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == ' ':
			if q[i+1] == ' ' { // q does not end with a blank
				return false
			}
		case !printable(c):
			return false
		}
	}
	return true
}

func printable(c byte) bool { return c > ' ' && c < 0x7f }

// Shorten collapses runs of white space and cuts the statement to at most
// max bytes (on a rune boundary), marking the cut with "...". It is what logs,
// errors and leak reports show: the statement text only, never argument
// values.
func Shorten(q string, max int) string {
	if short(q, max) {
		return q // nothing to collapse or cut: no copy
	}
	return collapse(q, max)
}

// collapse is Shorten's general case: it copies q rune by rune.
func collapse(q string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(q) {
		if r == ' ' || r == '\n' || r == '\t' || r == '\r' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+len(string(r)) > max {
			b.WriteString("...")
			return b.String()
		}
		b.WriteRune(r)
	}
	return b.String()
}
