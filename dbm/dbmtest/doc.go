// Package dbmtest holds helpers for testing code that uses package dbm.
//
// [VerifyNoLeaks] fails a test that leaves rows or transactions open:
//
//	func TestReport(t *testing.T) {
//		m := newManager(t)
//		defer dbmtest.VerifyNoLeaks(t, m)
//		...
//	}
package dbmtest
