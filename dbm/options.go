package dbm

import (
	"cmp"
	"log/slog"
	"strconv"
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
	retry         retryOptions     // WithRetry*; nil fields: Config's
	slow          *time.Duration   // WithSlowQueryThreshold; nil: Config's
	life          hooks            // WithOnConnect, WithBeforeUse, WithAfterRelease; see lifecycle.go
	commitCheck   *bool            // WithCommitCheck; nil: on for New on PostgreSQL
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
// [*ArgumentError]. Over a pool without a MaxOpenConnections bound,
// NoAcquireTimeout also means no fair queue: [Wrap] makes one for such a
// pool only to keep an acquire timeout.
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

// retryOptions are the WithRetry* values; a nil field leaves Config's.
type retryOptions struct {
	attempts         *int
	initial, maxWait *time.Duration
}

// WithRetryMaxAttempts sets the most times a retryable operation is tried,
// the first included, overriding Config.RetryMaxAttempts; 1 disables
// retries and zero means the default ([DefaultRetryMaxAttempts]). It is the
// way to set it for a manager made with [Wrap]. A negative n makes [New]
// and [Wrap] fail with an [*ArgumentError].
func WithRetryMaxAttempts(n int) Option {
	return optionFunc(func(o *options) {
		if n < 0 {
			o.invalid("WithRetryMaxAttempts", "negative count "+strconv.Itoa(n)+" (1 disables retries)")
			return
		}
		o.retry.attempts = &n
	})
}

// WithRetryInitialBackoff sets the first pause between attempts,
// overriding Config.RetryInitialBackoff; zero means the default
// ([DefaultRetryInitialBackoff]). A negative d, or one larger than the
// maximum pause in effect (see [WithRetryMaxBackoff]), makes [New] and
// [Wrap] fail with an [*ArgumentError].
func WithRetryInitialBackoff(d time.Duration) Option {
	return backoffOption("WithRetryInitialBackoff", d, func(o *options) **time.Duration { return &o.retry.initial })
}

// WithRetryMaxBackoff caps the pause between attempts, overriding
// Config.RetryMaxBackoff; zero means the default
// ([DefaultRetryMaxBackoff]). A negative d, or one smaller than the first
// pause in effect, makes [New] and [Wrap] fail with an [*ArgumentError].
func WithRetryMaxBackoff(d time.Duration) Option {
	return backoffOption("WithRetryMaxBackoff", d, func(o *options) **time.Duration { return &o.retry.maxWait })
}

// backoffOption is the option name that sets the retry pause field to d,
// refusing a negative d.
func backoffOption(name string, d time.Duration, field func(*options) **time.Duration) Option {
	return optionFunc(func(o *options) {
		if d < 0 {
			o.invalid(name, "negative duration "+d.String())
			return
		}
		*field(o) = &d
	})
}

// retrySettings applies the WithRetry* options over cfg's retry fields
// (cfg has its defaults applied) and checks the result: the first pause
// must not exceed the cap. fn names the call for the error.
func (o *options) retrySettings(fn string, cfg Config) (Config, error) {
	orDefault := func(v *time.Duration, field *time.Duration, def time.Duration) {
		if v != nil {
			*field = cmp.Or(*v, def)
		}
	}
	if o.retry.attempts != nil {
		cfg.RetryMaxAttempts = cmp.Or(*o.retry.attempts, DefaultRetryMaxAttempts)
	}
	orDefault(o.retry.initial, &cfg.RetryInitialBackoff, DefaultRetryInitialBackoff)
	orDefault(o.retry.maxWait, &cfg.RetryMaxBackoff, DefaultRetryMaxBackoff)
	if cfg.RetryInitialBackoff > cfg.RetryMaxBackoff {
		arg := "WithRetryInitialBackoff"
		if o.retry.initial == nil {
			arg = "WithRetryMaxBackoff"
		}
		return cfg, &ArgumentError{Func: fn, Arg: arg, Reason: "first pause " + cfg.RetryInitialBackoff.String() +
			" is larger than the maximum pause " + cfg.RetryMaxBackoff.String()}
	}
	return cfg, nil
}

// WithSlowQueryThreshold sets how long a statement may take before it is
// logged at WARN (see [WithLogger]), overriding Config.SlowQueryThreshold;
// zero turns the report off. It is the way to set it for a manager made
// with [Wrap]. A negative d makes [New] and [Wrap] fail with an
// [*ArgumentError].
func WithSlowQueryThreshold(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d < 0 {
			o.invalid("WithSlowQueryThreshold", "negative duration "+d.String()+" (zero turns the report off)")
			return
		}
		o.slow = &d
	})
}

// slowQueryThreshold is the option's threshold, else cfg's.
func (o *options) slowQueryThreshold(cfg time.Duration) time.Duration {
	if o.slow != nil {
		return *o.slow
	}
	return cfg
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
