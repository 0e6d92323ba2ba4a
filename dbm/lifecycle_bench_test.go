package dbm_test

import (
	"context"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// BenchmarkLifecycle is what the lifecycle wrapper and the commit check
// cost on PostgreSQL: a point select with the wrapper (the default, for
// its lifetime jitter) and without (NoLifetimeJitter), and a one-row
// write transaction with and without the commit check (one round trip
// more).
func BenchmarkLifecycle(b *testing.B) {
	admin := newPostgres(b)
	table := "dbm_lifecycle_bench_" + pgRandom(6)
	if _, err := admin.Exec(b.Context(), "CREATE TABLE "+table+" (id bigserial, v int)"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	open := func(b *testing.B, jitter time.Duration, opts ...dbm.Option) *dbm.Manager {
		cfg := postgresConfig(b)
		cfg.ConnMaxLifetimeJitter = jitter
		m, err := dbm.New(b.Context(), cfg, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		return m
	}
	for _, bc := range []struct {
		name   string
		jitter time.Duration
	}{{"select/wrapped", 0}, {"select/plain", dbm.NoLifetimeJitter}} {
		b.Run(bc.name, func(b *testing.B) {
			m := open(b, bc.jitter)
			b.ReportAllocs()
			for b.Loop() {
				var n int
				if err := m.Get(b.Context(), &n, "SELECT 1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, bc := range []struct {
		name  string
		check bool
	}{{"write-tx/commit-check", true}, {"write-tx/no-check", false}} {
		b.Run(bc.name, func(b *testing.B) {
			m := open(b, 0, dbm.WithCommitCheck(bc.check))
			b.ReportAllocs()
			for b.Loop() {
				err := m.WithTx(b.Context(), nil, func(ctx context.Context, tx *dbm.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO "+table+" (v) VALUES (1)")
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
