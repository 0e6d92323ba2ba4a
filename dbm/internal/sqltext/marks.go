package sqltext

// Marks counts the '?' placeholders of q outside literals, quoted
// identifiers and comments, for SQLite, which binds the arguments its
// statements name and ignores any more. plain is false when q names its
// parameters in any other way SQLite knows (?NNN, :name, @name, $name):
// then only the driver can count them.
func Marks(q string) (n int, plain bool) {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\'', '"', '`':
			i = skipQuoted(q, i, c, false)
		case '[': // SQLite's [quoted identifier]
			i = skipTo(q, i+1, "]")
		case '-', '/':
			i = skipComment(q, i)
		case '?':
			if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				return n, false
			}
			n++
		case ':', '@', '$':
			if i+1 < len(q) && (isLetter(q[i+1]) || q[i+1] == '_' || q[i+1] >= '0' && q[i+1] <= '9') {
				return n, false
			}
		}
	}
	return n, true
}
