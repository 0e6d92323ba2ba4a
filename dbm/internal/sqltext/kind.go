package sqltext

import (
	"strings"
)

// IsRead reports whether q, a statement that returns rows, only reads. It
// looks at q's words outside string literals, quoted identifiers, comments
// and dollar-quoted bodies:
//
//   - q must be one statement: a ';' followed by more SQL is not a read
//     ("SELECT 1; DELETE FROM t").
//   - The first keyword (after opening parentheses) must be SELECT, VALUES,
//     TABLE, SHOW, PRAGMA, WITH, or EXPLAIN/DESCRIBE/DESC.
//   - SELECT, VALUES, TABLE and WITH must not hold the word INTO
//     (SELECT ... INTO t2 creates a table; MySQL's INTO @var and INTO
//     OUTFILE count as well). WITH must not hold INSERT, UPDATE, DELETE or
//     MERGE (so a WITH ... FOR UPDATE counts as a write too: the test errs
//     on the safe side).
//   - EXPLAIN with ANALYZE (EXPLAIN ANALYZE ..., EXPLAIN (ANALYZE) ...)
//     runs the statement it explains, so it is a read only when that
//     statement is.
//
// Anything else, including INSERT ... RETURNING, is not a read. A SELECT of
// a function with side effects still counts as a read: the caller marks it
// (dbm.NotIdempotent). It does not allocate.
//
// It keeps no cache: the manager asks once per statement text and keeps the
// answer in its statement cache.
func IsRead(q string) bool { return isRead(q) }

func isRead(q string) bool {
	// A ';' anywhere (Trim has removed trailing ones) may separate a second
	// statement. Where it does depends on the server's lexical rules
	// (nested comments, backslash escapes, MySQL's "#" and "-- "), which
	// differ between databases; a statement holding one is not a read,
	// even when the ';' is only inside a literal.
	if strings.IndexByte(Trim(q), ';') >= 0 {
		return false
	}
	l := lexer{q: q}
	w := l.keyword()
	switch {
	case eq(w, "SELECT"), eq(w, "VALUES"), eq(w, "TABLE"):
		return l.restIsRead(false)
	case eq(w, "WITH"):
		return l.restIsRead(true)
	case eq(w, "SHOW"), eq(w, "PRAGMA"):
		return l.single()
	case eq(w, "EXPLAIN"), eq(w, "DESCRIBE"), eq(w, "DESC"):
		return l.explainIsRead()
	}
	return false
}

func eq(a, b string) bool { return strings.EqualFold(a, b) }

// restIsRead reads the rest of a SELECT, VALUES, TABLE or (with) WITH
// statement: no INTO, no second statement, and for WITH no data-modifying
// keyword.
func (l *lexer) restIsRead(with bool) bool {
	for {
		tok, kind := l.next()
		switch kind {
		case tokEnd:
			return true
		case tokWord:
			if eq(tok, "INTO") {
				return false
			}
			if with && (eq(tok, "INSERT") || eq(tok, "UPDATE") || eq(tok, "DELETE") || eq(tok, "MERGE")) {
				return false
			}
		case tokPunct:
			if tok == ";" {
				return l.single()
			}
		}
	}
}

// single reports whether nothing but white space, comments and semicolons
// is left of the statement after its start: it is one statement.
func (l *lexer) single() bool {
	for {
		tok, kind := l.next()
		switch {
		case kind == tokEnd:
			return true
		case kind == tokPunct && tok == ";":
			continue
		case l.sawSemicolon:
			return false
		}
	}
}

// explainIsRead reads an EXPLAIN (or DESCRIBE) statement after its keyword:
// its options, PostgreSQL's "(ANALYZE, ...)" and "ANALYZE VERBOSE",
// MySQL's "ANALYZE", "FORMAT=..." and "EXTENDED"; then the statement it
// explains, which must be a read when ANALYZE runs it.
func (l *lexer) explainIsRead() bool {
	analyze := false
	start := l.i
	tok, kind := l.next()
	if kind == tokPunct && tok == "(" { // PostgreSQL's option list
		for depth := 1; depth > 0; {
			tok, kind = l.next()
			switch {
			case kind == tokEnd, kind == tokPunct && tok == ";":
				return false // not a valid option list: the safe side
			case kind == tokPunct && tok == "(":
				depth++
			case kind == tokPunct && tok == ")":
				depth--
			case kind == tokWord && (eq(tok, "ANALYZE") || eq(tok, "ANALYSE")):
				analyze = true // even "ANALYZE false": erring on the safe side
			case kind != tokWord && kind != tokPunct:
				analyze = true // a quoted option ("analyze") may be ANALYZE
			}
		}
		start = l.i
		tok, kind = l.next()
	}
	for kind == tokWord {
		switch {
		case eq(tok, "ANALYZE"), eq(tok, "ANALYSE"):
			analyze = true
		case eq(tok, "VERBOSE"), eq(tok, "EXTENDED"), eq(tok, "PARTITIONS"):
		case eq(tok, "FORMAT"): // MySQL: FORMAT = JSON
			if t, k := l.next(); k != tokPunct || t != "=" {
				return !analyze && l.single()
			}
			l.next()
		default:
			if analyze {
				return IsRead(l.q[start:])
			}
			return l.single()
		}
		start = l.i
		tok, kind = l.next()
	}
	if analyze {
		return IsRead(l.q[start:])
	}
	l.i = start
	return l.single()
}

// keyword returns the statement's first word, after white space, comments
// and opening parentheses; "" when q starts otherwise.
func (l *lexer) keyword() string {
	for {
		tok, kind := l.next()
		switch {
		case kind == tokPunct && tok == "(":
			continue
		case kind == tokWord:
			return tok
		}
		return ""
	}
}

type tokKind uint8

const (
	tokEnd    tokKind = iota
	tokWord           // a keyword or unquoted identifier
	tokQuoted         // a string literal, quoted identifier or dollar-quoted body
	tokPunct          // any other byte: ( ) ; = , ...
	tokNumber         // digits, and a $n placeholder
)

// lexer walks a statement token by token, skipping white space and
// comments, and taking string literals, quoted identifiers and dollar
// quotes as whole tokens, with the rules of scan. sawSemicolon tells that a
// ';' outside of them was passed.
type lexer struct {
	q            string
	i            int
	sawSemicolon bool
}

// next returns the next token and its kind; tokEnd at the end of q.
func (l *lexer) next() (string, tokKind) {
	q := l.q
	for l.i < len(q) {
		i := l.i
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.i++
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			l.i = skipTo(q, i+2, "\n") + 1
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			l.i = skipTo(q, i+2, "*/") + 1
			continue
		case c == '\'' || c == '"' || c == '`':
			l.i = skipQuoted(q, i, c, c == '\'' && escapeString(q, i)) + 1
			return q[i:l.i], tokQuoted
		case c == '$':
			if tag, ok := dollarTag(q, i); ok {
				l.i = skipTo(q, i+len(tag), tag) + 1
				return q[i:l.i], tokQuoted
			}
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			l.i = j
			if j > i+1 {
				return q[i:j], tokNumber
			}
			return q[i:j], tokPunct
		case c == '_' || isLetter(c) || c >= 0x80:
			j := i + 1
			for j < len(q) && (identByte(q, j) || q[j] == '$' || q[j] >= 0x80) {
				j++
			}
			l.i = j
			return q[i:j], tokWord
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(q) && (identByte(q, j) || q[j] == '.') {
				j++
			}
			l.i = j
			return q[i:j], tokNumber
		}
		l.i++
		if c == ';' {
			l.sawSemicolon = true
		}
		return q[i : i+1], tokPunct
	}
	return "", tokEnd
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
