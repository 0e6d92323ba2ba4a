package sqltext

// SessionState returns what in q keeps state in the PostgreSQL session
// beyond the transaction it runs in, or "" when nothing does. A pooler that
// hands a server connection to another client after each transaction
// (PgBouncer in transaction mode) loses that state, or passes it on to the
// next client. It looks, outside string literals, quoted identifiers,
// comments and dollar-quoted bodies, at each statement of q for:
//
//   - SET and RESET, other than SET LOCAL, SET TRANSACTION and SET
//     CONSTRAINTS, which end with the transaction;
//   - LISTEN, PREPARE (SQL-level prepared statements) and DECLARE ... WITH
//     HOLD (cursors that outlive the transaction);
//   - CREATE TEMP (or TEMPORARY) TABLE, VIEW or SEQUENCE, unless ON COMMIT
//     DROP ends its life with the transaction;
//   - a call of a session-level advisory lock function (pg_advisory_lock,
//     pg_try_advisory_lock and their _shared and unlock forms; the _xact_
//     forms end with the transaction).
//
// A function that sets state itself (set_config(..., false), a procedure
// that runs SET) is not seen.
func SessionState(q string) string {
	l := lexer{q: q}
	for {
		tok, kind := l.peek()
		switch {
		case kind == tokEnd:
			return ""
		case kind == tokPunct && tok == ";":
			l.next() // an empty statement
			continue
		}
		if what := l.statementState(l.keyword()); what != "" {
			return what
		}
		// Skip to the next statement.
		for {
			tok, kind := l.next()
			if kind == tokEnd {
				return ""
			}
			if kind == tokPunct && tok == ";" {
				break
			}
		}
	}
}

// statementState reads one statement whose first word is w, up to (not
// past) its end or its ';', and returns what in it keeps session state.
func (l *lexer) statementState(w string) string {
	switch {
	case eq(w, "SET"):
		next, _ := l.peek()
		if eq(next, "LOCAL") || eq(next, "TRANSACTION") || eq(next, "CONSTRAINTS") {
			return l.advisoryLock()
		}
		return "SET without LOCAL (session setting)"
	case eq(w, "RESET"):
		return "RESET (session setting)"
	case eq(w, "LISTEN"):
		return "LISTEN (session notification channel)"
	case eq(w, "PREPARE"):
		return "PREPARE (session prepared statement)"
	case eq(w, "DECLARE"):
		return l.holdCursor()
	case eq(w, "CREATE"):
		return l.tempObject()
	}
	return l.advisoryLock()
}

// holdCursor reads a DECLARE statement: a cursor WITH HOLD outlives its
// transaction.
func (l *lexer) holdCursor() string {
	prev := ""
	for {
		tok, kind, ok := l.inStatement()
		if !ok {
			return ""
		}
		if kind == tokWord && eq(tok, "HOLD") && eq(prev, "WITH") {
			return "DECLARE ... WITH HOLD (cursor that outlives the transaction)"
		}
		prev = tok
	}
}

// tempObject reads a CREATE statement after its first word.
func (l *lexer) tempObject() string {
	tok, _ := l.next()
	if eq(tok, "GLOBAL") || eq(tok, "LOCAL") {
		tok, _ = l.next()
	}
	if !eq(tok, "TEMP") && !eq(tok, "TEMPORARY") {
		return l.advisoryLock()
	}
	var prev [2]string
	for {
		tok, kind, ok := l.inStatement()
		if !ok {
			return "CREATE TEMPORARY object without ON COMMIT DROP (lives as long as the session)"
		}
		if kind == tokWord && eq(tok, "DROP") && eq(prev[0], "ON") && eq(prev[1], "COMMIT") {
			return l.advisoryLock()
		}
		prev = [2]string{prev[1], tok}
	}
}

// advisoryLock reads the rest of a statement for a call of a session-level
// advisory lock function.
func (l *lexer) advisoryLock() string {
	for {
		tok, kind, ok := l.inStatement()
		if !ok {
			return ""
		}
		if kind == tokWord && sessionLockFunc(tok) {
			if t, k := l.peek(); k == tokPunct && t == "(" {
				return tok + " (session advisory lock; use the pg_advisory_xact_ forms)"
			}
		}
	}
}

// sessionLockFunc reports whether name is one of PostgreSQL's session-level
// advisory lock functions.
func sessionLockFunc(name string) bool {
	for _, f := range [...]string{
		"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
		"pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
	} {
		if eq(name, f) {
			return true
		}
	}
	return false
}

// inStatement returns the next token of the current statement; ok is false
// at its end, a ';' or the end of q, which it leaves unread.
func (l *lexer) inStatement() (tok string, kind tokKind, ok bool) {
	tok, kind = l.peek()
	if kind == tokEnd || kind == tokPunct && tok == ";" {
		return tok, kind, false
	}
	l.next()
	return tok, kind, true
}

// peek returns the next token without consuming it.
func (l *lexer) peek() (string, tokKind) {
	save := *l
	tok, kind := l.next()
	*l = save
	return tok, kind
}
