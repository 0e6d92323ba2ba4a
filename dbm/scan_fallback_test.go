package dbm_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// tagList is a sql.Scanner that appends what it is given, as a Scanner
// may: database/sql calls it once per row, on a zero field.
type tagList []string

func (l *tagList) Scan(src any) error {
	*l = append(*l, fmt.Sprint(src))
	return nil
}

type taggedRow struct {
	Tags tagList `db:"tags"`
	N    int     `db:"n"` // a float64 1.0 into an int: database/sql converts it, the fast path falls back
}

// A row that falls back from the fast path to database/sql's conversions
// must still see each Scanner called once, as database/sql alone would: the
// columns already converted are not scanned again into the same element.
func TestFallbackCallsEachScannerOnce(t *testing.T) {
	ctx := context.Background()
	m, mock := newMock(t, "sqlmock")
	const q = "SELECT tags, n FROM t"
	rows := func() *sqlmock.Rows {
		return sqlmock.NewRows([]string{"tags", "n"}).AddRow("a", int64(7)).AddRow("b", float64(1)).AddRow("c", int64(2))
	}
	want := []taggedRow{{tagList{"a"}, 7}, {tagList{"b"}, 1}, {tagList{"c"}, 2}}
	check := func(call string, got, want []taggedRow) {
		t.Helper()
		if !slices.EqualFunc(got, want, func(a, b taggedRow) bool { return slices.Equal(a.Tags, b.Tags) && a.N == b.N }) {
			t.Errorf("%s = %v, want %v (each Scanner called once per row)", call, got, want)
		}
	}
	// Each call gets a manager of its own so that its plan starts fast.
	mock.ExpectQuery(q).WillReturnRows(rows())
	got, err := dbm.Select[taggedRow](ctx, m, q)
	if err != nil {
		t.Fatal(err)
	}
	check("Select", got, want)

	m2, mock2 := newMock(t, "sqlmock")
	mock2.ExpectQuery(q).WillReturnRows(rows())
	got = nil
	for r, err := range dbm.Iter[taggedRow](ctx, m2, q) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	check("Iter", got, want)

	m3, mock3 := newMock(t, "sqlmock")
	mock3.ExpectQuery(q).WillReturnRows(sqlmock.NewRows([]string{"tags", "n"}).AddRow("b", float64(1)))
	var one taggedRow
	if err := m3.Get(ctx, &one, q); err != nil {
		t.Fatal(err)
	}
	check("Get", []taggedRow{one}, want[1:2])
}
