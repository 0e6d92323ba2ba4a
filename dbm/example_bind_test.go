package dbm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// A slice bound alone in IN (...) becomes one placeholder per element, on
// every driver.
func Example_inList() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	names, err := dbm.Select[string](ctx, m, "SELECT name FROM users WHERE id IN (?) ORDER BY id", []int64{1, 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output: [ada grace]
}

// Named parameters take their values from one struct (db tags, embedded
// structs) or map argument.
func Example_namedParameters() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	type newUser struct {
		ID     int64  `db:"id"`
		Name   string `db:"name"`
		Active bool   `db:"active"`
	}
	if _, err := m.Exec(ctx, "INSERT INTO users (id, name, active) VALUES (:id, :name, :active)",
		newUser{ID: 4, Name: "alan", Active: true}); err != nil {
		log.Fatal(err)
	}
	names, err := dbm.Select[string](ctx, m, "SELECT name FROM users WHERE active = :active AND id NOT IN (:skip) ORDER BY id",
		map[string]any{"active": true, "skip": []int64{1}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output: [grace alan]
}
