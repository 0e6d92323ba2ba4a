package dbm

import (
	"log/slog"
	"strings"
	"time"
)

// Option configures a [Manager] beyond what [Config] holds: things that are
// Go values rather than settings, such as a logger.
type Option interface{ apply(*options) }

type options struct {
	logger        *slog.Logger
	nameMapper    func(string) string
	tracer        Tracer           // nil: no tracing
	now           func() time.Time // the clock for durations; tests replace it
	leak          leakOptions      // see leaks.go
	ignoreUnknown bool             // WithIgnoreUnknownColumns
	acquire       *time.Duration   // WithAcquireTimeout; nil: Config's
	bad           *ArgumentError   // the first option given an invalid value
	noConnect     bool             // New skips its first ping: a replica's node (see cluster.go)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// defaultOptions is the one place where option defaults are set.
func defaultOptions() options {
	return options{
		logger:     slog.New(slog.DiscardHandler),
		nameMapper: strings.ToLower,
		now:        time.Now,
	}
}

// invalid records an option given a value it cannot use; [New] and [Wrap]
// report the first one.
func (o *options) invalid(option, reason string) {
	if o.bad == nil {
		o.bad = &ArgumentError{Arg: option, Reason: reason}
	}
}

// check returns the error for the first invalid option, naming fn, the
// call that was given it.
func (o *options) check(fn string) error {
	if o.bad == nil {
		return nil
	}
	e := *o.bad
	e.Func = fn
	return &e
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o
}

// WithAcquireTimeout sets how long a call waits for a free pool connection
// before it fails with [ErrPoolTimeout], overriding Config.AcquireTimeout;
// [NoAcquireTimeout] turns the bound off (only the caller's context bounds
// the wait). It is the way to set it for a manager made with [Wrap], which
// takes no Config and otherwise applies [DefaultAcquireTimeout]. Zero means
// the default. Another negative d makes [New] and [Wrap] fail with an
// [*ArgumentError].
func WithAcquireTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d < 0 && d != NoAcquireTimeout {
			o.invalid("WithAcquireTimeout", "negative duration "+d.String()+" (NoAcquireTimeout turns the bound off)")
			return
		}
		o.acquire = &d
	})
}

// acquireTimeout is the bound on the wait for a connection: the option's,
// else cfg's (with its default), as retryPolicy.acquire holds it.
func (o *options) acquireTimeout(cfg time.Duration) time.Duration {
	if o.acquire != nil {
		cfg = *o.acquire
	}
	if cfg == 0 {
		cfg = DefaultAcquireTimeout
	}
	return max(cfg, 0) // NoAcquireTimeout: 0
}

// WithLogger sets where the manager logs: slow statements (see
// Config.SlowQueryThreshold) at WARN, a pool that made statements wait for a
// connection at WARN (at most once a minute), and, as they are added,
// retries and leaks. By default nothing is logged. Log records never contain argument values or
// the password. A nil logger keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithNameMapper sets how a struct field without a `db` tag is matched to a
// column name. The default is [strings.ToLower], as in sqlx: field UserID
// matches column "userid". The mapper belongs to the manager; nothing global
// is changed. A nil function keeps the default.
func WithNameMapper(fn func(field string) string) Option {
	return optionFunc(func(o *options) {
		if fn != nil {
			o.nameMapper = fn
		}
	})
}

// WithIgnoreUnknownColumns makes every call of the manager that scans rows
// skip result columns that have no destination field, instead of failing
// with [ErrUnknownColumn] (the default). [IgnoreUnknownColumns] does the same
// for one call.
func WithIgnoreUnknownColumns() Option {
	return optionFunc(func(o *options) { o.ignoreUnknown = true })
}
