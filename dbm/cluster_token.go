package dbm

import (
	"context"
	"math"
	"sync/atomic"
)

// Token is a position in the primary's write-ahead log, taken after a
// write: a read made with it ([WithToken]) goes only to a replica that has
// replayed up to it, so it sees the write, or else to the primary. The zero
// Token asks for nothing. A Token is a value: keep it in a session or a
// cookie between requests with [Token.String] and [ParseToken].
type Token struct{ lsn uint64 }

// String returns the position in PostgreSQL's form ("16/B374D848"), or ""
// for the zero Token.
func (t Token) String() string {
	if t.lsn == 0 {
		return ""
	}
	return formatLSN(t.lsn)
}

// IsZero reports whether t asks for nothing.
func (t Token) IsZero() bool { return t.lsn == 0 }

// ParseToken parses [Token.String]'s form; "" is the zero Token. Anything
// else is an error matching [ErrInvalidArgument].
func ParseToken(s string) (Token, error) {
	if s == "" {
		return Token{}, nil
	}
	lsn, err := parseLSN(s)
	if err != nil {
		return Token{}, &ArgumentError{Func: "ParseToken", Arg: "s", Reason: "not a WAL position such as 16/B374D848"}
	}
	return Token{lsn}, nil
}

// Token returns the primary's current WAL position: every write that
// succeeded before the call is at or before it. Pass it to [WithToken] so
// that later reads see those writes. With one server (no
// Config.ReplicaHosts) every read sees them anyway, and Token returns the
// zero Token at no cost.
func (m *Manager) Token(ctx context.Context) (Token, error) {
	c := m.routed()
	if c == nil {
		if m == nil {
			return Token{}, errNilManager("Token")
		}
		return Token{}, nil
	}
	if err := c.m.check(ctx, "Token"); err != nil {
		return Token{}, err
	}
	n := c.writer.Load()
	if !n.primary.Load() {
		return Token{}, c.m.newError(ClassConnection, "", "token", "", errNoPrimary)
	}
	lsn := c.positionAfterWrite(ctx, n)
	if lsn == math.MaxUint64 {
		return Token{}, c.m.newError(ClassConnection, "", "token", "", errNoPrimary)
	}
	return Token{lsn}, nil
}

type tokenKey struct{}
type holderKey struct{}
type primaryKey struct{}

// WithToken returns a copy of ctx whose reads go only to a replica that has
// replayed up to t, or else to the primary. Tokens add up: the furthest one
// applies. A nil ctx is returned as it is, and the call that gets it fails
// with [ErrInvalidArgument].
func WithToken(ctx context.Context, t Token) context.Context {
	if ctx == nil || t.lsn <= tokenOf(ctx) {
		return ctx
	}
	return context.WithValue(ctx, tokenKey{}, t)
}

// ReadYourWrites returns a copy of ctx under which every write that
// succeeds through the manager (a statement, a committed transaction) moves
// a token held in the context past it, so that the reads made with the
// context, or one derived from it, afterwards see those writes: they go to
// a replica that has replayed them, or to the primary. Each write costs one
// more round trip to the primary, to read its WAL position. With one
// server it changes nothing. A nil ctx is returned as it is.
func ReadYourWrites(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return context.WithValue(ctx, holderKey{}, new(tokenHolder))
}

// TokenOf returns the token that [WithToken] and [ReadYourWrites] put in
// ctx: the furthest position its reads must see. The zero Token when there
// is none.
func TokenOf(ctx context.Context) Token {
	if ctx == nil {
		return Token{}
	}
	return Token{tokenOf(ctx)}
}

// Primary returns a copy of ctx whose statements all go to the primary,
// reads included: for a read that must see every write committed anywhere
// before it. A nil ctx is returned as it is.
func Primary(ctx context.Context) context.Context {
	if ctx == nil {
		return nil
	}
	return context.WithValue(ctx, primaryKey{}, true)
}

// tokenHolder is the token of a [ReadYourWrites] context.
type tokenHolder struct{ lsn atomic.Uint64 }

// raise moves the token to lsn, if that is further.
func (h *tokenHolder) raise(lsn uint64) {
	for {
		cur := h.lsn.Load()
		if lsn <= cur || h.lsn.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

func holderOf(ctx context.Context) *tokenHolder {
	h, _ := ctx.Value(holderKey{}).(*tokenHolder)
	return h
}

// tokenOf is the furthest position ctx's reads must see.
func tokenOf(ctx context.Context) uint64 {
	var lsn uint64
	if t, ok := ctx.Value(tokenKey{}).(Token); ok {
		lsn = t.lsn
	}
	if h := holderOf(ctx); h != nil {
		lsn = max(lsn, h.lsn.Load())
	}
	return lsn
}

func forcedPrimary(ctx context.Context) bool {
	v, _ := ctx.Value(primaryKey{}).(bool)
	return v
}
