package dbm_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// wrapWithOpts wraps a fresh sqlmock pool with opts; every expectation must be
// met by the end of the test.
func wrapWithOpts(t *testing.T, opts ...dbm.Option) (*dbm.Manager, sqlmock.Sqlmock, error) {
	t.Helper()
	db, mock, err := sqlmock.New(sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dbm.Wrap(db, "postgres", opts...)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	t.Cleanup(func() {
		if err := mock.ExpectationsWereMet(); err != nil {
			t.Errorf("sqlmock: %v", err)
		}
		_ = m.Close()
	})
	return m, mock, nil
}

// TestRetryOptionsOnWrap: a manager made with Wrap takes its retry policy
// from WithRetryMaxAttempts, WithRetryInitialBackoff and
// WithRetryMaxBackoff: the number of tries and the caps of the pauses
// between them follow the options, not Config's defaults (3 tries, 50ms,
// 1s).
func TestRetryOptionsOnWrap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []dbm.Option
		tries     int
		wantCaps  []time.Duration // the cap of each pause, in order
		wantClass dbm.Class
	}{
		{name: "defaults", tries: 3, wantCaps: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{name: "4 tries, 10ms doubling up to 15ms", tries: 4,
			opts:     []dbm.Option{dbm.WithRetryMaxAttempts(4), dbm.WithRetryInitialBackoff(10 * time.Millisecond), dbm.WithRetryMaxBackoff(15 * time.Millisecond)},
			wantCaps: []time.Duration{10 * time.Millisecond, 15 * time.Millisecond, 15 * time.Millisecond}},
		{name: "1 disables retries", tries: 1, opts: []dbm.Option{dbm.WithRetryMaxAttempts(1)}},
		{name: "zero is the default", tries: 3,
			opts:     []dbm.Option{dbm.WithRetryMaxAttempts(0), dbm.WithRetryInitialBackoff(0), dbm.WithRetryMaxBackoff(0)},
			wantCaps: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{name: "the last option given wins", tries: 2,
			opts:     []dbm.Option{dbm.WithRetryMaxAttempts(5), dbm.WithRetryMaxAttempts(2), dbm.WithRetryMaxBackoff(2 * time.Second)},
			wantCaps: []time.Duration{50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, mock, err := wrapWithOpts(t, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			clk := &retryClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			dbm.SetClockForTest(m, clk.now, clk.sleep)
			var caps []time.Duration
			dbm.SetJitterForTest(m, func(n time.Duration) time.Duration { caps = append(caps, n-1); return n - 1 })
			for range tc.tries {
				mock.ExpectQuery("SELECT n FROM t").WillReturnError(&stateErr{"40001"})
			}
			var n int
			if err := m.Get(context.Background(), &n, "SELECT n FROM t"); !errors.Is(err, dbm.ErrSerialization) {
				t.Fatalf("Get after %d failed tries: %v, want ErrSerialization", tc.tries, err)
			}
			if !slices.Equal(caps, tc.wantCaps) {
				t.Errorf("pause caps = %v, want %v", caps, tc.wantCaps)
			}
			if got := clk.pauses(); !slices.Equal(got, tc.wantCaps) {
				t.Errorf("pauses = %v, want %v", got, tc.wantCaps)
			}
		})
	}
}

// TestRetryOptionsWinOverConfig: with both a Config field and an option,
// the option wins (as for WithAcquireTimeout and WithLeakThreshold).
func TestRetryOptionsWinOverConfig(t *testing.T) {
	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:",
		RetryMaxAttempts: 5, RetryInitialBackoff: 20 * time.Millisecond, RetryMaxBackoff: 30 * time.Millisecond}
	m, err := dbm.New(context.Background(), cfg,
		dbm.WithRetryMaxAttempts(2), dbm.WithRetryInitialBackoff(time.Millisecond), dbm.WithRetryMaxBackoff(3*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	attempts, initial, maxWait := dbm.RetryPolicyOf(m)
	if attempts != 2 || initial != time.Millisecond || maxWait != 3*time.Millisecond {
		t.Errorf("retry policy = %d tries, %v, %v; want the options' 2, 1ms, 3ms", attempts, initial, maxWait)
	}
	m2, err := dbm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if attempts, initial, maxWait := dbm.RetryPolicyOf(m2); attempts != 5 || initial != 20*time.Millisecond || maxWait != 30*time.Millisecond {
		t.Errorf("without options: %d tries, %v, %v; want Config's 5, 20ms, 30ms", attempts, initial, maxWait)
	}
}

// TestSlowQueryThresholdOption: WithSlowQueryThreshold turns the slow
// statement log on for a manager made with Wrap, and wins over
// Config.SlowQueryThreshold for one made with New.
func TestSlowQueryThresholdOption(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, m *dbm.Manager, clock *fakeClock, buf *logBuffer) string {
		t.Helper()
		clock.SetStep(3 * time.Second) // every statement "takes" 3s
		if _, err := m.Exec(ctx, "UPDATE t SET n = 1"); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	t.Run("Wrap", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			opts     []dbm.Option
			wantSlow bool
		}{
			{"no option: off", nil, false},
			{"2s", []dbm.Option{dbm.WithSlowQueryThreshold(2 * time.Second)}, true},
			{"4s", []dbm.Option{dbm.WithSlowQueryThreshold(4 * time.Second)}, false},
			{"zero: off", []dbm.Option{dbm.WithSlowQueryThreshold(0)}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clock := newFakeClock()
				var buf logBuffer
				opts := append([]dbm.Option{dbm.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), dbm.WithClock(clock.Now)}, tc.opts...)
				m, mock, err := wrapWithOpts(t, opts...)
				if err != nil {
					t.Fatal(err)
				}
				mock.ExpectExec("UPDATE t SET n = 1").WillReturnResult(sqlmock.NewResult(0, 1))
				out := run(t, m, clock, &buf)
				if got := strings.Contains(out, "dbm: slow statement"); got != tc.wantSlow {
					t.Errorf("slow statement logged: %v, want %v; log: %s", got, tc.wantSlow, out)
				}
				if got := m.Stats().SlowStatements; got != map[bool]uint64{true: 1}[tc.wantSlow] {
					t.Errorf("SlowStatements = %d", got)
				}
			})
		}
	})
	t.Run("New: the option wins over Config", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			cfg      time.Duration
			opt      dbm.Option
			wantSlow bool
		}{
			{"Config 1s, option 0 turns it off", time.Second, dbm.WithSlowQueryThreshold(0), false},
			{"Config 10s, option 2s", 10 * time.Second, dbm.WithSlowQueryThreshold(2 * time.Second), true},
			{"Config 2s, no option", 2 * time.Second, nil, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clock := newFakeClock()
				var buf logBuffer
				m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", SlowQueryThreshold: tc.cfg},
					dbm.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), dbm.WithClock(clock.Now), tc.opt)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if _, err := m.Exec(ctx, "CREATE TABLE t (n INTEGER)"); err != nil {
					t.Fatal(err)
				}
				if got := strings.Contains(run(t, m, clock, &buf), "dbm: slow statement"); got != tc.wantSlow {
					t.Errorf("slow statement logged: %v, want %v", got, tc.wantSlow)
				}
			})
		}
	})
}

// TestOptionsRefuseBadValues: a bad value makes New and Wrap fail with an
// ArgumentError (ErrInvalidArgument) that names the option and the call,
// never with a panic or a silently used value.
func TestOptionsRefuseBadValues(t *testing.T) {
	for _, tc := range []struct {
		opts []dbm.Option
		arg  string
	}{
		{[]dbm.Option{dbm.WithRetryMaxAttempts(-1)}, "WithRetryMaxAttempts"},
		{[]dbm.Option{dbm.WithRetryInitialBackoff(-time.Millisecond)}, "WithRetryInitialBackoff"},
		{[]dbm.Option{dbm.WithRetryMaxBackoff(-time.Second)}, "WithRetryMaxBackoff"},
		{[]dbm.Option{dbm.WithSlowQueryThreshold(-time.Second)}, "WithSlowQueryThreshold"},
		{[]dbm.Option{dbm.WithAcquireTimeout(-2 * time.Second)}, "WithAcquireTimeout"},
		{[]dbm.Option{dbm.WithLeakThreshold(-time.Second)}, "WithLeakThreshold"},
		// The first pause above the cap: over the default cap (1s), and
		// a cap under the default first pause (50ms).
		{[]dbm.Option{dbm.WithRetryInitialBackoff(2 * time.Second)}, "WithRetryInitialBackoff"},
		{[]dbm.Option{dbm.WithRetryMaxBackoff(10 * time.Millisecond)}, "WithRetryMaxBackoff"},
		{[]dbm.Option{dbm.WithRetryInitialBackoff(time.Second), dbm.WithRetryMaxBackoff(time.Millisecond)}, "WithRetryInitialBackoff"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			var ae *dbm.ArgumentError
			if _, _, err := wrapWithOpts(t, tc.opts...); !errors.Is(err, dbm.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Arg != tc.arg || ae.Func != "Wrap" {
				t.Errorf("Wrap: %v, want an ArgumentError naming Wrap and %s", err, tc.arg)
			}
			cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}
			m, err := dbm.New(context.Background(), cfg, tc.opts...)
			if err == nil {
				_ = m.Close()
			}
			if !errors.Is(err, dbm.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Arg != tc.arg || ae.Func != "New" {
				t.Errorf("New: %v, want an ArgumentError naming New and %s", err, tc.arg)
			}
		})
	}
	// A cap the options set must also hold the first pause Config set.
	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", RetryInitialBackoff: 500 * time.Millisecond}
	var ae *dbm.ArgumentError
	if _, err := dbm.New(context.Background(), cfg, dbm.WithRetryMaxBackoff(100*time.Millisecond)); !errors.As(err, &ae) || ae.Arg != "WithRetryMaxBackoff" {
		t.Errorf("Config.RetryInitialBackoff 500ms with WithRetryMaxBackoff(100ms): %v, want an ArgumentError naming WithRetryMaxBackoff", err)
	}
}
