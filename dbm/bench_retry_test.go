package dbm_test

import (
	"context"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// BenchmarkRetryPath measures what the retry rules add to a call that
// succeeds: a point select (the pool path), a write (on a connection of its
// own, out of database/sql's hidden retry), and both with AcquireTimeout
// set, each next to the plain database/sql call, over the in-memory driver.
//
//	go test -run '^$' -bench BenchmarkRetryPath -benchmem -count 6 ./dbm | benchstat -col /impl -
func BenchmarkRetryPath(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b, 1)
	m, err := dbm.Wrap(db, "mem")
	if err != nil {
		b.Fatal(err)
	}
	ma, err := dbm.Wrap(db, "mem")
	if err != nil {
		b.Fatal(err)
	}
	dbm.SetRetryForTest(ma, 3, time.Millisecond, time.Millisecond, time.Second)
	b.Run("op=select/impl=hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchRow
			row := db.QueryRowContext(ctx, "SELECT id LIMIT 1")
			if err := row.Scan(&r.ID, &r.Name, &r.Email, &r.Active, &r.CreatedAt, &r.Score, &r.Nick, &r.Age); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=select/impl=Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchRow
			if err := m.Get(ctx, &r, "SELECT id LIMIT 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=select/impl=GetAcquireTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r benchRow
			if err := ma.Get(ctx, &r, "SELECT id LIMIT 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=exec/impl=hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.ExecContext(ctx, "UPDATE t SET n = 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=exec/impl=Exec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Exec(ctx, "UPDATE t SET n = 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	ictx := dbm.Idempotent(ctx)
	b.Run("op=exec/impl=ExecIdempotent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Exec(ictx, "UPDATE t SET n = 1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
