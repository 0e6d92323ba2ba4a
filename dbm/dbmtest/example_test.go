package dbmtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
	"github.com/dbmanager-go/dbmanager/dbm/dbmtest"
)

// User and UserRepo are application code: a repository over a dbm.Querier,
// so it runs on a *dbm.Manager or inside a *dbm.Tx.
type User struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
}

type UserRepo struct{ db dbm.Querier }

// ErrNoUser is the repository's own error for a missing user.
var ErrNoUser = errors.New("no such user")

func (r *UserRepo) ByEmail(ctx context.Context, email string) (User, error) {
	u, err := dbm.One[User](ctx, r.db, `
		SELECT id, email
		  FROM users
		 WHERE email = ?`, email)
	if errors.Is(err, dbm.ErrNotFound) {
		return User{}, ErrNoUser
	}
	return u, err
}

// testUserRepoByEmail is the body of a test, func TestUserRepo_ByEmail(t
// *testing.T) in a _test.go file.
func testUserRepoByEmail(t testing.TB) {
	ctx := context.Background()
	m, mock := dbmtest.NewMock(t)
	repo := &UserRepo{db: m}

	// The expectation is the statement as the code writes it, on one line.
	mock.ExpectQuery("SELECT id, email FROM users WHERE email = ?").
		WithArgs("ada@example.com").
		WillReturnRows(sqlmock.NewRows([]string{"id", "email"}).AddRow(1, "ada@example.com"))
	u, err := repo.ByEmail(ctx, "ada@example.com")
	fmt.Println(u.ID, u.Email, err)

	mock.ExpectQuery("SELECT id, email FROM users WHERE email = ?").
		WithArgs("nobody@example.com").
		WillReturnRows(sqlmock.NewRows([]string{"id", "email"}))
	_, err = repo.ByEmail(ctx, "nobody@example.com")
	fmt.Println(err)
}

func ExampleNewMock() {
	// In a test this is the *testing.T; a stand-in here runs the cleanup
	// that the testing package runs when a test ends.
	t := &fakeT{}
	testUserRepoByEmail(t)
	fmt.Println("failures:", t.end())
	// Output:
	// 1 ada@example.com <nil>
	// no such user
	// failures:
}

func TestUserRepo_ByEmail(t *testing.T) {
	testUserRepoByEmail(t)
}
