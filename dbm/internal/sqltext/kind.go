package sqltext

import "strings"

// IsRead reports whether q, a statement that returns rows, only reads: its
// first keyword (after white space, comments and opening parentheses) is
// SELECT, VALUES, TABLE, SHOW, EXPLAIN, DESCRIBE/DESC or PRAGMA, or it is
// WITH and no INSERT, UPDATE, DELETE or MERGE keyword follows. Anything
// else, including INSERT ... RETURNING, is not a read. The test errs on the
// safe side: a literal or identifier spelled like one of those keywords
// makes a WITH statement count as a write. A SELECT of a function with side
// effects still counts as a read. It does not allocate.
func IsRead(q string) bool {
	word, rest := firstWord(q)
	switch {
	case strings.EqualFold(word, "SELECT"), strings.EqualFold(word, "VALUES"),
		strings.EqualFold(word, "TABLE"), strings.EqualFold(word, "SHOW"),
		strings.EqualFold(word, "EXPLAIN"), strings.EqualFold(word, "DESCRIBE"),
		strings.EqualFold(word, "DESC"), strings.EqualFold(word, "PRAGMA"):
		return true
	case strings.EqualFold(word, "WITH"):
		for _, w := range [...]string{"INSERT", "UPDATE", "DELETE", "MERGE"} {
			if containsWord(rest, w) {
				return false
			}
		}
		return true
	}
	return false
}

// firstWord returns the first keyword of q and what follows it.
func firstWord(q string) (word, rest string) {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipTo(q, i+2, "\n") + 1
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = skipTo(q, i+2, "*/") + 1
		default:
			j := i
			for j < len(q) && isLetter(q[j]) {
				j++
			}
			return q[i:j], q[j:]
		}
	}
	return "", ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// containsWord reports whether w (upper case) occurs in s as a whole word,
// in any case.
func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) && !identByte(s, i-1) && (i+len(w) == len(s) || !identByte(s, i+len(w))) {
			return true
		}
	}
	return false
}
