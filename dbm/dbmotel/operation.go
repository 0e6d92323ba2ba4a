package dbmotel

// operationName is db.operation.name for a statement: its first keyword as
// written ("SELECT", "insert"), after blanks and comments; "" when there is
// none. The conventions ask for the first operation found, without case
// normalisation. It allocates nothing.
func operationName(q string) string {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := i + 2
			for end+1 < len(q) && (q[end] != '*' || q[end+1] != '/') {
				end++
			}
			i = end + 2
		default:
			j := i
			for j < len(q) && isLetter(q[j]) {
				j++
			}
			return q[i:j]
		}
	}
	return ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
