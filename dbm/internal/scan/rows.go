package scan

import "database/sql"

// Rows is what the scanner reads a result through: the methods of
// *sql.Rows it uses, in the manner of scany's dbscan.Rows. The caller
// keeps the rest (Err, Close, result sets): the scanner reads rows and
// never ends them.
type Rows interface {
	Columns() ([]string, error)
	ColumnTypes() ([]*sql.ColumnType, error)
	Next() bool
	Scan(dest ...any) error
}

var _ Rows = (*sql.Rows)(nil)
