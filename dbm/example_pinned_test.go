package dbm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func ExampleManager_Conn() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	// A temporary table lives in one session: every statement that uses it
	// must run on the same connection.
	c, err := m.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // discards the connection, temporary table and all
	if _, err := c.Exec(ctx, "CREATE TEMPORARY TABLE picked (id INTEGER)"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO picked SELECT id FROM users WHERE active"); err != nil {
		log.Fatal(err)
	}
	// A Conn is a Querier.
	names, err := dbm.Select[string](ctx, c, "SELECT name FROM users WHERE id IN (SELECT id FROM picked) ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output: [ada grace]
}

func ExampleTx_Savepoint() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO users VALUES (4, 'edsger', true)"); err != nil {
			return err
		}
		if err := tx.Savepoint(ctx, "before_barbara"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO users VALUES (5, 'barbara', true)"); err != nil {
			return err
		}
		// Undo what followed the savepoint; edsger stays.
		return tx.RollbackTo(ctx, "before_barbara")
	})
	if err != nil {
		log.Fatal(err)
	}
	names, err := dbm.Select[string](ctx, m, "SELECT name FROM users WHERE id > 3 ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output: [edsger]
}

func ExampleTx_CopyFrom() {
	ctx := context.Background()
	m := exampleManager(ctx)
	defer m.Close()

	rows := [][]any{
		{10, "alan", true},
		{11, "barbara", false},
		{12, "edsger", true},
	}
	var n int64
	err := m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) (err error) {
		n, err = tx.CopyFrom(ctx, "users", []string{"id", "name", "active"}, dbm.CopyRows(rows))
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	total, err := dbm.One[int64](ctx, m, "SELECT count(*) FROM users")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, total)
	// Output: 3 6
}
