package dbm_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// A primary and two replicas: reads go to a replica within 500ms of the
// primary, writes to the primary, and ReadYourWrites makes the read after
// an update see it (docs/replicas.md). Not run: it needs the servers.
func ExampleReadYourWrites() {
	ctx := context.Background()
	m, err := dbm.New(ctx, dbm.Config{
		Host: "db1", User: "app", Password: "secret", Database: "app",
		ReplicaHosts:  []string{"db2", "db3:5433"},
		ReplicaMaxLag: 500 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	ctx = dbm.ReadYourWrites(ctx)
	if _, err := m.Exec(ctx, "UPDATE accounts SET name = $1 WHERE id = $2", "Ada", 1); err != nil {
		fmt.Println(err)
		return
	}
	// On a replica that has replayed the update, or else on the primary.
	name, err := dbm.One[string](ctx, m, "SELECT name FROM accounts WHERE id = $1", 1)
	fmt.Println(name, err)

	// Which server does what, for a dashboard or a health endpoint.
	for _, n := range m.Stats().Nodes {
		fmt.Println(n.Addr, n.Role, n.Healthy, n.Lag)
	}
}

// A token carried between requests, such as in a cookie: the read in the
// second request sees the write of the first.
func ExampleWithToken() {
	var m *dbm.Manager // made with Config.ReplicaHosts
	ctx := context.Background()

	// Request 1: write, then hand the token to the client.
	if _, err := m.Exec(ctx, "INSERT INTO posts (body) VALUES ($1)", "hello"); err != nil {
		return
	}
	tok, err := m.Token(ctx)
	if err != nil {
		return
	}
	cookie := tok.String()

	// Request 2: read with the token it sent back.
	tok, err = dbm.ParseToken(cookie)
	if err != nil {
		return
	}
	posts, err := dbm.Select[string](dbm.WithToken(ctx, tok), m, "SELECT body FROM posts")
	fmt.Println(len(posts), err)
}
