package dbm_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Nested destinations for LEFT JOIN results.
type Address struct {
	City string  `db:"city"`
	Zip  *string `db:"zip"`
}

type Author struct {
	ID   int64    `db:"id"`
	Name string   `db:"name"`
	Home *Address `db:"home"` // columns author.home.city, author.home.zip
}

type Book struct {
	ID     int64   `db:"id"`
	Title  string  `db:"title"`
	Author *Author `db:"author"` // columns author.id, author.name, ...
	Ship   Address `db:"ship"`   // a value struct: ship.city, ship.zip
}

func seedLibrary(t *testing.T, m *dbm.Manager) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, zip TEXT)",
		"CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, author_id INTEGER)",
		"INSERT INTO authors VALUES (1, 'ann', 'oslo', '0150'), (2, 'bob', NULL, NULL)",
		"INSERT INTO books VALUES (10, 'with author', 1), (11, 'orphan', NULL), (12, 'homeless author', 2)",
	} {
		if _, err := m.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

const bookQuery = `SELECT b.id, b.title, a.id AS "author.id", a.name AS "author.name",
	a.city AS "author.home.city", a.zip AS "author.home.zip", 'x' AS "ship.city"
	FROM books b LEFT JOIN authors a ON a.id = b.author_id ORDER BY b.id`

func TestScanNestedPointerStaysNilForAllNULL(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedLibrary(t, m)
	check := func(t *testing.T, books []Book) {
		t.Helper()
		if len(books) != 3 {
			t.Fatalf("got %d books", len(books))
		}
		a := books[0].Author
		if a == nil || a.ID != 1 || a.Name != "ann" || a.Home == nil || a.Home.City != "oslo" || a.Home.Zip == nil || *a.Home.Zip != "0150" {
			t.Errorf("book 10 author = %+v", a)
		}
		if books[1].Author != nil {
			t.Errorf("orphan's author = %+v, want nil (all its columns are NULL)", books[1].Author)
		}
		if a := books[2].Author; a == nil || a.Name != "bob" || a.Home != nil {
			t.Errorf("book 12 author = %+v, want bob with a nil Home", a)
		}
		for _, b := range books {
			if b.Ship.City != "x" || b.Ship.Zip != nil {
				t.Errorf("book %d ship = %+v", b.ID, b.Ship)
			}
		}
	}
	t.Run("Select", func(t *testing.T) {
		books, err := dbm.Select[Book](ctx, m, bookQuery)
		if err != nil {
			t.Fatal(err)
		}
		check(t, books)
	})
	t.Run("pointers", func(t *testing.T) {
		var ptrs []*Book
		if err := m.ExecuteQuery(ctx, &ptrs, bookQuery); err != nil {
			t.Fatal(err)
		}
		books := make([]Book, len(ptrs))
		for i, p := range ptrs {
			books[i] = *p
		}
		check(t, books)
	})
	t.Run("Iter", func(t *testing.T) {
		var books []Book
		for b, err := range dbm.Iter[Book](ctx, m, bookQuery) {
			if err != nil {
				t.Fatal(err)
			}
			books = append(books, b)
		}
		check(t, books)
	})
	t.Run("One", func(t *testing.T) {
		b, err := dbm.One[Book](ctx, m, bookQuery+" LIMIT 1 OFFSET 1")
		if err != nil || b.Author != nil || b.Title != "orphan" {
			t.Errorf("One = %+v, %v", b, err)
		}
	})
	t.Run("partly NULL into a non-nullable field", func(t *testing.T) {
		// The author exists (a column is not NULL), so its NULL name must
		// fit Author.Name, and a string cannot hold NULL.
		_, err := dbm.Select[Book](ctx, m, `SELECT 1 AS id, 't' AS title, 5 AS "author.id", NULL AS "author.name"`)
		var se *dbm.ScanError
		if !errors.Is(err, dbm.ErrNullValue) || !errors.As(err, &se) || se.Column != "author.name" {
			t.Errorf("err = %v, want ErrNullValue on author.name", err)
		}
	})
}

// Collisions: the shallowest field wins; at the same depth, the first
// declared.
type collBase struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}
type collOther struct {
	Name string `db:"name"`
	Kind string `db:"kind"`
}
type collUser struct {
	collBase
	collOther
	Name string `db:"name"`
}

func TestScanNameCollisions(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	u, err := dbm.One[collUser](ctx, m, "SELECT 1 AS id, 'outer' AS name, 'k' AS kind")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "outer" || u.collBase.Name != "" || u.collOther.Name != "" || u.ID != 1 || u.Kind != "k" {
		t.Errorf("got %+v, want the outer Name to win", u)
	}
	type twoEmbedded struct {
		collBase
		collOther
	}
	v, err := dbm.One[twoEmbedded](ctx, m, "SELECT 'n' AS name")
	if err != nil {
		t.Fatal(err)
	}
	if v.collBase.Name != "n" || v.collOther.Name != "" {
		t.Errorf("got %+v, want the first embedded struct (collBase) to win", v)
	}
}

// Money is a sql.Scanner and a driver.Valuer stored as integer cents.
type Money struct{ Cents int64 }

func (m *Money) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		m.Cents = v
		return nil
	case nil:
		m.Cents = -1
		return nil
	}
	return fmt.Errorf("money: cannot scan %T", src)
}

func (m Money) Value() (driver.Value, error) { return m.Cents, nil }

type priced struct {
	ID     int64             `db:"id"`
	Price  Money             `db:"price"`
	Old    *Money            `db:"old"`
	Count  *int64            `db:"count"`
	Label  *string           `db:"label"`
	Maybe  sql.Null[float64] `db:"maybe"`
	hidden string            //lint:ignore U1000 unexported fields are never matched
}

func TestScanPointersNullsAndScanners(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	p, err := dbm.One[priced](ctx, m, "SELECT 1 AS id, ? AS price, NULL AS old, 3 AS count, NULL AS label, NULL AS maybe", Money{Cents: 250})
	if err != nil {
		t.Fatal(err)
	}
	if p.Price.Cents != 250 || p.Old != nil || p.Count == nil || *p.Count != 3 || p.Label != nil || p.Maybe.Valid {
		t.Errorf("got %+v", p)
	}
	p, err = dbm.One[priced](ctx, m, "SELECT 2 AS id, NULL AS price, 7 AS old, 1.5 AS maybe")
	if err != nil {
		t.Fatal(err)
	}
	if p.Price.Cents != -1 || p.Old == nil || p.Old.Cents != 7 || !p.Maybe.Valid || p.Maybe.V != 1.5 {
		t.Errorf("got %+v (a Scanner sees NULL itself; a *Scanner is allocated)", p)
	}
	if _, err := dbm.One[priced](ctx, m, "SELECT 'x' AS hidden"); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Errorf("unexported field matched: err = %v, want ErrUnknownColumn", err)
	}
	_, err = dbm.Select[priced](ctx, m, "SELECT NULL AS id")
	var se *dbm.ScanError
	if !errors.Is(err, dbm.ErrNullValue) || !errors.As(err, &se) || !strings.Contains(se.Dest, "priced.ID") {
		t.Errorf("NULL into int64: err = %v", err)
	}
}

func TestScanReusedCapacityIsZeroed(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	dest := make([]priced, 3, 8)
	for i := range dest {
		dest[i] = priced{ID: 99, Price: Money{5}, Label: new(string)}
	}
	if err := m.ExecuteQuery(ctx, &dest, "SELECT 1 AS id UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 ORDER BY 1"); err != nil {
		t.Fatal(err)
	}
	for i, p := range dest {
		if p.ID != int64(i+1) || p.Price.Cents != 0 || p.Label != nil {
			t.Errorf("dest[%d] = %+v, want only ID set", i, p)
		}
	}
}

func TestIgnoreUnknownColumns(t *testing.T) {
	ctx := context.Background()
	const q = "SELECT 1 AS id, 'x' AS surprise, 'y' AS hidden"
	strict := newSQLite(t)
	if _, err := dbm.Select[priced](ctx, strict, q); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Fatalf("default: err = %v, want ErrUnknownColumn", err)
	}
	lctx := dbm.IgnoreUnknownColumns(ctx)
	lenient := newSQLite(t, dbm.WithIgnoreUnknownColumns())
	for name, run := range map[string]func() (priced, error){
		"per call Select": func() (priced, error) {
			ps, err := dbm.Select[priced](lctx, strict, q)
			if err != nil {
				return priced{}, err
			}
			return ps[0], nil
		},
		"per call One": func() (priced, error) { return dbm.One[priced](lctx, strict, q) },
		"per call Iter": func() (priced, error) {
			for p, err := range dbm.Iter[*priced](lctx, strict, q) {
				if err != nil {
					return priced{}, err
				}
				return *p, nil
			}
			return priced{}, errors.New("no row")
		},
		"per manager": func() (priced, error) { return dbm.One[priced](ctx, lenient, q) },
	} {
		p, err := run()
		if err != nil || p.ID != 1 || p.hidden != "" {
			t.Errorf("%s: got %+v, %v", name, p, err)
		}
	}
	//lint:ignore SA1012 a nil context must give an error, not a panic
	if _, err := dbm.One[priced](dbm.IgnoreUnknownColumns(nil), strict, q); !errors.Is(err, dbm.ErrInvalidArgument) {
		t.Errorf("nil ctx: err = %v, want ErrInvalidArgument", err)
	}
	// The strict plan for the same columns is still strict.
	if _, err := dbm.One[priced](ctx, strict, q); !errors.Is(err, dbm.ErrUnknownColumn) {
		t.Errorf("strict after lenient: err = %v", err)
	}
}

func TestPlanCacheConcurrentCallers(t *testing.T) {
	ctx := context.Background()
	m := newSQLite(t)
	seedLibrary(t, m)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 25 {
				var err error
				if i%2 == 0 {
					var bs []Book
					bs, err = dbm.Select[Book](ctx, m, bookQuery)
					if err == nil && (len(bs) != 3 || bs[1].Author != nil || bs[0].Author.Home.City != "oslo") {
						err = fmt.Errorf("got %+v", bs)
					}
				} else {
					_, err = dbm.One[collUser](ctx, m, "SELECT 1 AS id, 'n' AS name")
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
