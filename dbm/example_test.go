package dbm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type exampleUser struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Active bool   `db:"active"`
}

// exampleManager opens an in-memory SQLite database with a users table.
func exampleManager(ctx context.Context) *dbm.Manager {
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, active BOOLEAN NOT NULL)",
		"INSERT INTO users VALUES (1, 'ada', true), (2, 'charles', false), (3, 'grace', true)",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	return m
}

func ExampleNew() {
	ctx := context.Background()
	// Zero fields take their defaults; see Config.
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(m.Stats().MaxOpenConnections)
	// Output: 10
}

func ExampleManager_ExecuteQuery() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	var users []exampleUser
	if err := m.ExecuteQuery(ctx, &users, "SELECT * FROM users WHERE active = ? ORDER BY id;", true); err != nil {
		log.Fatal(err)
	}
	for _, u := range users {
		fmt.Println(u.ID, u.Name)
	}
	// Output:
	// 1 ada
	// 3 grace
}

func ExampleManager_Get() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	var u exampleUser
	err := m.Get(ctx, &u, "SELECT * FROM users WHERE id = ?", 42)
	fmt.Println(errors.Is(err, dbm.ErrNotFound))
	// Output: true
}

func ExampleManager_WithTx() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE users SET active = false WHERE id = ?", 1); err != nil {
			return err
		}
		return errors.New("changed my mind") // rolls back
	})
	fmt.Println(err)
	n, _ := dbm.One[int](ctx, m, "SELECT count(*) FROM users WHERE active")
	fmt.Println(n, "active")
	// Output:
	// changed my mind
	// 2 active
}

func ExampleIter() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	for u, err := range dbm.Iter[exampleUser](ctx, m, "SELECT * FROM users ORDER BY id") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(u.Name)
		if u.ID == 2 {
			break // the rows are closed for you
		}
	}
	// Output:
	// ada
	// charles
}

func ExampleError() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	_, err := m.Exec(ctx, "SELECT * FROM no_such_table")
	var dbErr *dbm.Error
	fmt.Println(errors.As(err, &dbErr), dbErr.Op)
	// Output: true exec
}

func ExampleManager_Query() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	rows, err := m.Query(ctx, "SELECT id, name FROM users WHERE active ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u exampleUser
		if err := rows.StructScan(&u); err != nil {
			log.Fatal(err)
		}
		fmt.Println(u.ID, u.Name)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 ada
	// 3 grace
}

func ExampleLoadConfig() {
	// In a program: cfg, err := dbm.LoadConfig(".env"), with DB_* variables
	// overriding the file. Bad values are errors naming the variable:
	os.Setenv("DB_PORT", "five")
	defer os.Unsetenv("DB_PORT")
	_, err := dbm.LoadConfig()
	fmt.Println(err)
	fmt.Println(errors.Is(err, dbm.ErrConfig))
	// Output:
	// dbm: config: Port (DB_PORT) = "five": not a whole number
	// true
}

func ExampleManager_Leaks() {
	ctx := context.Background()
	m := exampleManager(ctx)

	rows, err := m.Query(ctx, "SELECT name FROM users ORDER BY id") // never closed
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range m.Leaks() {
		// Location is the caller's file:line; its line number is left out
		// here so the output does not change when this file does.
		fmt.Println(l.Kind, l.Query, strings.HasPrefix(l.Location, "example_test.go:"))
	}

	// Close closes the pool anyway and names what was left open.
	err = m.Close()
	fmt.Println(errors.Is(err, dbm.ErrLeaked))
	var le *dbm.LeakError
	if errors.As(err, &le) {
		fmt.Println(len(le.Leaks), le.Leaks[0].Kind)
	}
	_ = rows.Close()
	// Output:
	// rows SELECT name FROM users ORDER BY id true
	// true
	// 1 rows
}
