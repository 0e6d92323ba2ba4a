package dbm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/dbmanager-go/dbmanager/dbm"
)

// TestAcquireTimeoutDefault: an unset AcquireTimeout (a zero field, or no
// DB_ACQUIRE_TIMEOUT) takes DefaultAcquireTimeout; NoAcquireTimeout, or an
// explicit DB_ACQUIRE_TIMEOUT=0, turns the bound off; other negative values
// are configuration errors.
func TestAcquireTimeoutDefault(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     string // DB_ACQUIRE_TIMEOUT; "" unset
		field   time.Duration
		want    time.Duration // what the manager applies
		wantCfg time.Duration // what LoadConfig returns
	}{
		{name: "unset", want: dbm.DefaultAcquireTimeout},
		{name: "explicit 0 in the environment", env: "0", want: 0, wantCfg: dbm.NoAcquireTimeout},
		{name: "explicit 0s in the environment", env: "0s", want: 0, wantCfg: dbm.NoAcquireTimeout},
		{name: "2s in the environment", env: "2s", want: 2 * time.Second, wantCfg: 2 * time.Second},
		{name: "-1ns in the environment", env: "-1ns", want: 0, wantCfg: dbm.NoAcquireTimeout},
		{name: "NoAcquireTimeout in Config", field: dbm.NoAcquireTimeout, want: 0, wantCfg: dbm.NoAcquireTimeout},
		{name: "5s in Config", field: 5 * time.Second, want: 5 * time.Second, wantCfg: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearDBEnv(t)
			t.Setenv("DB_DRIVER", dbm.DriverSQLite)
			t.Setenv("DB_NAME", ":memory:")
			t.Setenv("DB_ACQUIRE_TIMEOUT", tc.env)
			cfg, err := dbm.LoadConfig()
			if err != nil {
				t.Fatal(err)
			}
			if tc.field != 0 {
				cfg.AcquireTimeout = tc.field
			}
			if cfg.AcquireTimeout != tc.wantCfg {
				t.Errorf("Config.AcquireTimeout = %v, want %v", cfg.AcquireTimeout, tc.wantCfg)
			}
			m, err := dbm.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := dbm.AcquireTimeoutOf(m); got != tc.want {
				t.Errorf("the manager waits at most %v for a connection, want %v", got, tc.want)
			}
		})
	}
	t.Run("other negative values", func(t *testing.T) {
		clearDBEnv(t)
		t.Setenv("DB_ACQUIRE_TIMEOUT", "-5s")
		if _, err := dbm.LoadConfig(); !errors.Is(err, dbm.ErrConfig) {
			t.Errorf("DB_ACQUIRE_TIMEOUT=-5s: %v, want ErrConfig", err)
		}
		cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", AcquireTimeout: -time.Second}
		if _, err := dbm.New(context.Background(), cfg); !errors.Is(err, dbm.ErrConfig) {
			t.Errorf("AcquireTimeout -1s: %v, want ErrConfig", err)
		}
	})
}

// TestWithAcquireTimeout: the option wins over Config, and is the way to
// set the bound on a manager made with Wrap, which applies the default.
func TestWithAcquireTimeout(t *testing.T) {
	wrap := func(opts ...dbm.Option) (*dbm.Manager, error) {
		db, _, err := sqlmock.New()
		if err != nil {
			t.Fatal(err)
		}
		m, err := dbm.Wrap(db, "postgres", opts...)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		t.Cleanup(func() { _ = m.Close() })
		return m, nil
	}
	for _, tc := range []struct {
		name string
		opts []dbm.Option
		want time.Duration
	}{
		{"Wrap without the option", nil, dbm.DefaultAcquireTimeout},
		{"NoAcquireTimeout", []dbm.Option{dbm.WithAcquireTimeout(dbm.NoAcquireTimeout)}, 0},
		{"5s", []dbm.Option{dbm.WithAcquireTimeout(5 * time.Second)}, 5 * time.Second},
		{"zero is the default", []dbm.Option{dbm.WithAcquireTimeout(0)}, dbm.DefaultAcquireTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := wrap(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := dbm.AcquireTimeoutOf(m); got != tc.want {
				t.Errorf("AcquireTimeout = %v, want %v", got, tc.want)
			}
		})
	}
	var ae *dbm.ArgumentError
	if _, err := wrap(dbm.WithAcquireTimeout(-2 * time.Second)); !errors.As(err, &ae) || ae.Arg != "WithAcquireTimeout" {
		t.Errorf("WithAcquireTimeout(-2s): %v, want an ArgumentError naming the option", err)
	}
	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", AcquireTimeout: time.Second}
	m, err := dbm.New(context.Background(), cfg, dbm.WithAcquireTimeout(dbm.NoAcquireTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := dbm.AcquireTimeoutOf(m); got != 0 {
		t.Errorf("New with Config.AcquireTimeout 1s and WithAcquireTimeout(NoAcquireTimeout): %v, want 0 (the option wins)", got)
	}
}

// TestAcquireUnderAShorterDeadline: a caller whose own deadline comes
// before AcquireTimeout: its call (a write: always on a connection of its
// own) allocates no more than one without a deadline (the fair queue needs
// no timer per call; before the queue, and on an unbounded Wrap pool
// before it had one, the bound was a context.WithTimeout per call, saved
// under a shorter deadline), and a wait that runs out is the caller's
// timeout (ErrTimeout), not the pool's.
func TestAcquireUnderAShorterDeadline(t *testing.T) {
	m := newMem(t, 1)
	m.DB().SetMaxOpenConns(1)
	short, cancel := context.WithTimeout(context.Background(), dbm.DefaultAcquireTimeout/2)
	defer cancel()
	get := func(ctx context.Context) func() {
		return func() {
			if _, err := m.Exec(ctx, "UPDATE t SET n = 1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	bg := testing.AllocsPerRun(200, get(context.Background()))
	dl := testing.AllocsPerRun(200, get(short))
	t.Logf("allocs: %.0f under a shorter deadline, %.0f without", dl, bg)
	if dl > bg {
		t.Errorf("Exec allocates %.0f times under a deadline shorter than AcquireTimeout, %.0f without one; want no more", dl, bg)
	}
	// An exhausted pool: the caller's own deadline ends the wait.
	tx, err := m.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel3()
	if _, err := m.Exec(ctx, "UPDATE t SET n = 1"); !errors.Is(err, dbm.ErrTimeout) || errors.Is(err, dbm.ErrPoolTimeout) {
		t.Errorf("wait under the caller's 50ms deadline: %v; want ErrTimeout, not ErrPoolTimeout", err)
	}
}
