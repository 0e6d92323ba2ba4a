// Package dbmtest helps unit-test code that uses a [dbm.Manager] without a
// database.
//
// [NewMock] returns a Manager over go-sqlmock and the mock to set
// expectations on. Expected statements are written the way the code under
// test writes them: matching ignores differences in white space, and '?'
// placeholders are rebound as the manager rebinds them, but otherwise the
// text must be equal (no regular expressions to escape). A call the mock
// did not expect fails the test at once, naming the expected and the
// actual call; the code under test gets a [*MismatchError]. When the test
// ends, it fails if an expectation was not met or if rows or a transaction
// were left open.
//
// [VerifyNoLeaks] does the leak check for any Manager, mocked or real:
// it fails a test that leaves rows or transactions open, naming the
// file:line that opened them.
//
//	func TestUserRepo_ByEmail(t *testing.T) {
//		m, mock := dbmtest.NewMock(t)
//		mock.ExpectQuery("SELECT id, email FROM users WHERE email = ?").
//			WithArgs("ada@example.com").
//			WillReturnRows(sqlmock.NewRows([]string{"id", "email"}).AddRow(1, "ada@example.com"))
//		u, err := (&UserRepo{db: m}).ByEmail(ctx, "ada@example.com")
//		...
//	}
package dbmtest
