package dbm_test

import (
	"context"
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
