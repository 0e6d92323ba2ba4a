package dbm_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/dbmanager-go/dbmanager/dbm"
)

type Order struct {
	ID     int64 `db:"id"`
	UserID int64 `db:"user_id"`
}

type User struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
}

// A JOIN of two tables that both have an id column. Read into struct{
// Order; User }, the two "id" columns would both go to Order.ID: that is an
// error. Tagging the embedded User with a prefix and aliasing its columns
// "user.id", "user.email" gives each column its own field.
func Example_joinWithPrefix() {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{Driver: dbm.DriverSQLite, Database: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, q := range []string{
		"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL)",
		"INSERT INTO users VALUES (7, 'ada@example.com')",
		"INSERT INTO orders VALUES (1, 7)",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			log.Fatal(err)
		}
	}

	type OrderWithUser struct {
		Order
		User
	}
	_, err = dbm.Select[OrderWithUser](ctx, m,
		"SELECT o.id, o.user_id, u.id, u.email FROM orders o JOIN users u ON u.id = o.user_id")
	var se *dbm.ScanError
	if errors.As(err, &se) && errors.Is(err, dbm.ErrDuplicateColumn) {
		fmt.Printf("column %q at positions %d and %d\n", se.Column, se.Other+1, se.Index+1)
	}

	type OrderAndUser struct {
		Order
		User `db:"user"` // its fields take the columns user.id, user.email
	}
	rows, err := dbm.Select[OrderAndUser](ctx, m, `SELECT o.id, o.user_id,
		u.id AS "user.id", u.email AS "user.email"
		FROM orders o JOIN users u ON u.id = o.user_id`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rows[0].Order.ID, rows[0].User.ID, rows[0].Email)
	// Output:
	// column "id" at positions 1 and 3
	// 1 7 ada@example.com
}
