package sqltext

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Param is one placeholder of a statement, as [Params] finds it.
type Param struct {
	Start, End int    // the placeholder's bytes in the statement
	Name       string // a named parameter's name (":name" without the colon)
	N          int    // a $n placeholder's number; 0 for '?' and named parameters
	// InList reports that the placeholder stands alone in an IN list:
	// "IN (?)", "NOT IN ($2)", "in (:ids)".
	InList bool
}

// Params returns the placeholders of q in order, outside string literals,
// quoted identifiers, comments and dollar-quoted bodies.
//
// Without named, they are '?' and $n placeholders. As for [Rebind], a '?'
// in a statement that holds a $n placeholder is an operator (PostgreSQL's
// jsonb '?'), not a placeholder.
//
// With named, they are :name parameters only. A name starts with a letter
// or '_' and goes on with letters, digits, '_' and '.' (for a field of a
// nested struct, ":author.name"); letters may be any Unicode letters. A
// colon is not a parameter when it is part of a PostgreSQL cast ("::int",
// also right after a parameter, ":id::int"), an assignment (":="), or when
// it follows an identifier, a number or a closing bracket (an array slice
// "a[lo:hi]", a time "12:30").
func Params(q string, named bool) []Param {
	var params []Param
	l := lexer{q: q}
	var prev [2]string // the last two tokens' texts, for IN (
	var prevKind [2]tokKind
	numbered := false
	for {
		tok, kind := l.next()
		if kind == tokEnd {
			break
		}
		start := l.i - len(tok)
		p := Param{Start: start, End: l.i, N: -1}
		switch {
		case named && kind == tokPunct && tok == ":":
			name, end, ok := namedAt(q, start)
			if !ok {
				if end > l.i {
					l.i = end // a "::" cast or ":=": both colons
				}
				break
			}
			l.i, p.End, p.Name = end, end, name
		case !named && kind == tokPunct && tok == "?":
			p.N = 0
		case !named && kind == tokNumber && tok[0] == '$':
			p.N, _ = strconv.Atoi(tok[1:])
			numbered = true
		}
		if p.N >= 0 || p.Name != "" {
			next, nextKind := l.peek()
			p.InList = prevKind[1] == tokPunct && prev[1] == "(" && prevKind[0] == tokWord && eq(prev[0], "IN") &&
				nextKind == tokPunct && next == ")"
			params = append(params, p)
		}
		prev, prevKind = [2]string{prev[1], q[start:l.i]}, [2]tokKind{prevKind[1], kind}
	}
	if numbered {
		kept := params[:0]
		for _, p := range params {
			if p.N != 0 {
				kept = append(kept, p)
			}
		}
		params = kept
	}
	return params
}

// namedAt reads a named parameter at q[i], a ':'. It returns the name and
// the end of the parameter; or ok false and, for a "::" cast or ":=", the
// end of the two-byte operator.
func namedAt(q string, i int) (name string, end int, ok bool) {
	if i+1 < len(q) && (q[i+1] == ':' || q[i+1] == '=') {
		return "", i + 2, false
	}
	if i > 0 {
		if c := q[i-1]; identByte(q, i-1) || c == ']' || c == ')' || c == ':' || c == '$' || c >= utf8.RuneSelf {
			return "", i + 1, false
		}
	}
	j := i + 1
	for j < len(q) {
		r, size := utf8.DecodeRuneInString(q[j:])
		letter := r == '_' || isLetter(q[j]) || r >= utf8.RuneSelf && isUnicodeLetter(r)
		if j == i+1 && !letter {
			return "", i + 1, false
		}
		if !letter && !(r >= '0' && r <= '9') && !(r == '.' && j+1 < len(q) && nameStart(q[j+1:])) {
			break
		}
		j += size
	}
	if j == i+1 {
		return "", i + 1, false
	}
	return q[i+1 : j], j, true
}

// nameStart reports whether s starts with a letter or '_'.
func nameStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r == '_' || r < utf8.RuneSelf && isLetter(byte(r)) || r >= utf8.RuneSelf && isUnicodeLetter(r)
}

func isUnicodeLetter(r rune) bool { return unicode.IsLetter(r) }
