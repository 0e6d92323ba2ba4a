// Command otel shows dbm/dbmotel wired up: a manager on an embedded SQLite
// database whose statements, transaction and pool are reported to
// OpenTelemetry. Spans and metrics go to standard output (the stdout
// exporters); a real program uses an OTLP exporter the same way.
//
//	go run ./examples/otel
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	_ "modernc.org/sqlite" // "sqlite"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmotel"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) (err error) {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	metrics, err := stdoutmetric.New(stdoutmetric.WithWriter(out), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return err
	}
	// A periodic reader exports every minute and once more at Shutdown.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(time.Minute))))
	defer func() {
		// Shutdown exports what is left. The meter provider is shut down
		// while the pool is still observed (below), so that the pool's
		// gauges are in the last export too; here it only matters when
		// run failed before that.
		if e := tp.Shutdown(context.Background()); err == nil {
			err = e
		}
		_ = mp.Shutdown(context.Background())
	}()

	cfg := dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", AcquireTimeout: 5 * time.Second}
	ot, err := dbmotel.New(dbmotel.WithConfig(cfg), dbmotel.WithTracerProvider(tp), dbmotel.WithMeterProvider(mp),
		dbmotel.WithQueryText(true))
	if err != nil {
		return err
	}
	m, err := dbm.New(ctx, cfg, dbm.WithTracer(ot))
	if err != nil {
		return err
	}
	defer m.Close()
	reg, err := ot.ObservePool(m)
	if err != nil {
		return err
	}
	defer reg.Unregister()

	if _, err := m.Exec(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		return err
	}
	if err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO users (id, name) VALUES (?, ?)", 1, "Ada")
		return err
	}); err != nil {
		return err
	}
	var name string
	if err := m.Get(ctx, &name, "SELECT name FROM users WHERE id = ?", 1); err != nil {
		return err
	}
	fmt.Fprintln(out, "user 1 is", name)
	return mp.Shutdown(ctx)
}
