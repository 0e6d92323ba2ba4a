package dbm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// WithTx may run its function again after a serialization failure or a
// deadlock. This function is safe to rerun: what it collects is declared
// inside it, and the message goes out through AfterCommit, once, after the
// commit that counts.
func ExampleTx_AfterCommit() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		var names []string // fresh on every run
		for _, name := range []string{"edsger", "barbara"} {
			if _, err := tx.Exec(ctx, "INSERT INTO users (name, active) VALUES (?, true)", name); err != nil {
				return err
			}
			names = append(names, name)
		}
		return tx.AfterCommit(func() {
			fmt.Println("welcome mail to", names) // runs once, only if the rows are in
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	n, _ := dbm.One[int](ctx, m, "SELECT count(*) FROM users")
	fmt.Println(n, "users")
	// Output:
	// welcome mail to [edsger barbara]
	// 5 users
}
