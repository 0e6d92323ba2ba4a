// Command quickstart is the seed document's example use case in Go: it
// connects (an embedded SQLite database unless DB_* variables or a .env
// file say otherwise), creates a users table, inserts a few users, lists the
// active ones, prints the pool statistics and closes the manager.
//
//	go run ./examples/quickstart                 # embedded SQLite, in memory
//	DB_DRIVER=postgres DB_HOST=localhost DB_USER=app DB_PASSWORD=secret DB_NAME=app go run ./examples/quickstart
//	DB_DRIVER=mysql DB_HOST=127.0.0.1 DB_USER=root DB_NAME=test go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
	// dbm brings lib/pq ("postgres"); a program imports any other driver it
	// uses. The quickstart imports them all so DB_DRIVER can pick any.
	_ "github.com/go-sql-driver/mysql" // "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	_ "modernc.org/sqlite"             // "sqlite", the embedded default
)

// User is one row of the users table.
type User struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Email  string `db:"email"`
	Active bool   `db:"active"`
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// Initialize the manager with connection details from the environment
	// (and a .env file when there is one).
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := dbm.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(out, "connected: %v\n", m)

	if err := createTable(ctx, m); err != nil {
		return err
	}
	err = seed(ctx, m, out)
	if err == nil {
		err = listActive(ctx, m, out)
	}
	// Drop the example table again, whatever happened, so the quickstart
	// can run twice.
	if _, dropErr := m.Exec(context.WithoutCancel(ctx), `DROP TABLE users`); err == nil {
		err = dropErr
	}
	if err != nil {
		return err
	}

	// Close the connections to free up resources.
	return m.Close()
}

// listActive runs the design document's query and prints the rows and the
// pool statistics.
func listActive(ctx context.Context, m *dbm.Manager, out io.Writer) error {
	// Execute a query to retrieve all active users.
	var users []User
	if err := m.ExecuteQuery(ctx, &users, "SELECT * FROM users WHERE active = true;"); err != nil {
		return err
	}
	for _, u := range users {
		fmt.Fprintf(out, "%d %s <%s>\n", u.ID, u.Name, u.Email)
	}

	s := m.Stats()
	fmt.Fprintf(out, "pool: open=%d in_use=%d idle=%d max_open=%d statements=%d\n",
		s.OpenConnections, s.InUse, s.Idle, s.MaxOpenConnections, s.Statements)
	return nil
}

// loadConfig reads DB_* variables, from .env too when the file exists; with
// none set it picks the embedded SQLite database.
func loadConfig() (dbm.Config, error) {
	var files []string
	if _, err := os.Stat(".env"); err == nil {
		files = append(files, ".env")
	}
	cfg, err := dbm.LoadConfig(files...)
	if err != nil {
		return cfg, err
	}
	// Only with no connection setting at all: DB_NAME=app alone means a
	// PostgreSQL database on localhost, not an SQLite file called "app".
	if cfg.Driver == "" && cfg.DSN == "" && cfg.Host == "" && cfg.Port == 0 &&
		cfg.User == "" && cfg.Password == "" && cfg.Database == "" {
		cfg.Driver = dbm.DriverSQLite
		cfg.Database = ":memory:"
	}
	return cfg, nil
}

// createTable creates the example users table. It never touches a users
// table it did not create: on a database that already has one, CREATE
// fails and the quickstart stops.
func createTable(ctx context.Context, m *dbm.Manager) error {
	if _, err := m.Exec(ctx, `CREATE TABLE users (
		id     INTEGER PRIMARY KEY,
		name   VARCHAR(255) NOT NULL,
		email  VARCHAR(255) NOT NULL UNIQUE,
		active BOOLEAN NOT NULL
	)`); err != nil {
		return fmt.Errorf("cannot create the example users table (the quickstart never touches an existing one; "+
			"point DB_NAME at a database without a users table): %w", err)
	}
	return nil
}

// seed inserts the example users in one transaction and says how many
// once it has committed.
func seed(ctx context.Context, m *dbm.Manager, out io.Writer) error {
	users := []User{
		{1, "Ada Lovelace", "ada@example.com", true},
		{2, "Charles Babbage", "charles@example.com", false},
		{3, "Grace Hopper", "grace@example.com", true},
		{4, "Alan Turing", "alan@example.com", true},
	}
	// WithTx runs the function again after a serialization failure or a
	// deadlock, so it must be safe to rerun: it counts inside itself, and
	// reports through AfterCommit, which runs once, after the commit.
	return m.WithTx(ctx, nil, func(ctx context.Context, tx *dbm.Tx) error {
		inserted := 0 // fresh on every run
		for _, u := range users {
			_, err := tx.Exec(ctx, `INSERT INTO users (id, name, email, active) VALUES (?, ?, ?, ?)`, u.ID, u.Name, u.Email, u.Active)
			if errors.Is(err, dbm.ErrUniqueViolation) {
				return fmt.Errorf("user %s already exists: %w", u.Email, err)
			}
			if err != nil {
				return err
			}
			inserted++
		}
		return tx.AfterCommit(func() { fmt.Fprintf(out, "inserted %d users\n", inserted) })
	})
}
