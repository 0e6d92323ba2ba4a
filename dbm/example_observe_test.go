package dbm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// spanRecorder is a dbm.Tracer in the shape of an OpenTelemetry bridge: it
// opens a span in Start, keeps it in the context, and ends it in End. With
// go.opentelemetry.io/otel the two methods would read:
//
//	func (t otelTracer) Start(ctx context.Context, op dbm.TraceOp) context.Context {
//		ctx, _ = t.tracer.Start(ctx, "db."+op.Name, trace.WithSpanKind(trace.SpanKindClient),
//			trace.WithAttributes(attribute.String("db.query.text", op.Statement), attribute.Int("dbm.attempt", op.Attempt)))
//		return ctx
//	}
//
//	func (t otelTracer) End(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
//		span := trace.SpanFromContext(ctx)
//		if res.Err != nil {
//			span.SetAttributes(attribute.String("error.type", res.Class.String()))
//			span.SetStatus(codes.Error, res.Class.String())
//		}
//		span.End()
//	}
//
// A metrics tracer would instead observe res.Duration in a histogram
// labelled with op.Name and res.Class.
type spanRecorder struct{}

type spanDepth struct{}

func (r *spanRecorder) Start(ctx context.Context, op dbm.TraceOp) context.Context {
	d, _ := ctx.Value(spanDepth{}).(int)
	return context.WithValue(ctx, spanDepth{}, d+1)
}

func (r *spanRecorder) End(ctx context.Context, op dbm.TraceOp, res dbm.TraceResult) {
	d := ctx.Value(spanDepth{}).(int)
	line := strings.Repeat("  ", d-1) + op.Name
	if op.Statement != "" {
		line += " " + op.Statement
	}
	switch {
	case res.Err != nil:
		line += " error=" + res.Class.String()
	case op.Name == dbm.TraceTx:
		line += fmt.Sprint(" committed=", res.Committed)
	default:
		line += fmt.Sprint(" rows=", res.Rows)
	}
	fmt.Println(line)
}

func ExampleWithTracer() {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"}, dbm.WithTracer(&spanRecorder{}))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	_, _ = m.Exec(ctx, "CREATE TABLE users (name TEXT UNIQUE)")
	_ = m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO users VALUES (?)", "ada")
		return err
	})
	_, _ = m.Exec(ctx, "INSERT INTO users VALUES (?)", "ada")
	names, _ := dbm.Select[string](ctx, m, "SELECT name FROM users")
	fmt.Println(names)
	// Output:
	// exec CREATE TABLE users (name TEXT UNIQUE) rows=-1
	//   exec INSERT INTO users VALUES (?) rows=-1
	// tx committed=true
	// exec INSERT INTO users VALUES (?) error=unique_violation
	// query SELECT name FROM users rows=1
	// [ada]
}

func ExampleWithLogger() {
	ctx := context.Background()
	// Drop the time and the measured duration so the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	// A threshold of 1ns makes every statement slow, for the example.
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:", SlowQueryThreshold: time.Nanosecond}, dbm.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	n, _ := dbm.One[int](ctx, m, "SELECT count(*) FROM sqlite_master WHERE name <> ?", "secret-argument")
	fmt.Println(n)
	// Output:
	// level=WARN msg="dbm: slow statement" op=query statement="SELECT count(*) FROM sqlite_master WHERE name <> ?" rows=1
	// 0
}

func ExampleManager_Stats() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	_, _ = m.Exec(ctx, "INSERT INTO users VALUES (4, 'ada', true)") // a duplicate name
	_ = m.WithTx(ctx, nil, func(context.Context, *dbm.Tx) error { return errors.New("undo") })

	s := m.Stats()
	fmt.Println("statements:", s.Statements, "errors:", s.ErrorsByClass)
	fmt.Println("transactions:", s.Transactions, "rollbacks:", s.Rollbacks)
	fmt.Println("pool:", s.InUse, "in use of", s.MaxOpenConnections)
	// Output:
	// statements: 3 errors: map[unique_violation:1]
	// transactions: 1 rollbacks: 1
	// pool: 0 in use of 10
}

// Errors from every driver match the same sentinels with errors.Is, and
// Classify names their class.
func Example_errorMatching() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	_, err := m.Exec(ctx, "INSERT INTO users VALUES (4, 'ada', true)")
	switch {
	case errors.Is(err, dbm.ErrUniqueViolation):
		fmt.Println("name taken;", "class:", dbm.Classify(err), "retryable:", dbm.IsRetryable(err))
	case err != nil:
		log.Fatal(err)
	}

	_, err = dbm.One[exampleUser](ctx, m, "SELECT * FROM users WHERE id = ?", 99)
	fmt.Println(errors.Is(err, dbm.ErrNotFound))
	// Output:
	// name taken; class: unique_violation retryable: false
	// true
}
