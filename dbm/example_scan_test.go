package dbm_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Rows obtained without the manager (here from its *sql.DB; in practice
// from any database/sql code) are scanned with the manager's mapping.
func ExampleScanAll() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	rows, err := m.DB().QueryContext(ctx, "SELECT id, name, active FROM users ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	var users []exampleUser
	if err := dbm.ScanAll(rows, &users); err != nil { // closes rows
		log.Fatal(err)
	}
	fmt.Println(len(users), users[0].Name)
	// Output: 3 ada
}

func ExampleScanOne() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	rows, err := m.DB().QueryContext(ctx, "SELECT id, name, active FROM users WHERE name = 'grace'")
	if err != nil {
		log.Fatal(err)
	}
	var u exampleUser
	if err := dbm.ScanOne(rows, &u); err != nil { // closes rows
		log.Fatal(err)
	}
	fmt.Println(u.ID, u.Name, u.Active)
	// Output: 3 grace true
}

// Rebind gives the text the manager would send, for statements run on
// m.DB() or handed to another library. sqlx's DB().Rebind also rewrites the
// '?' inside the string literal and keeps the semicolon.
func ExampleManager_Rebind() {
	db, err := sql.Open("postgres", "host=localhost dbname=app") // Rebind needs no connection
	if err != nil {
		log.Fatal(err)
	}
	m, err := dbm.Wrap(db, dbm.DriverPostgres)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	q := "SELECT id FROM users WHERE name <> '?' AND id > ?;"
	fmt.Println(m.Rebind(q))
	fmt.Println(m.DB().Rebind(q))
	// Output:
	// SELECT id FROM users WHERE name <> '?' AND id > $1
	// SELECT id FROM users WHERE name <> '$1' AND id > $2;
}
