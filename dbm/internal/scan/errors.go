package scan

import "errors"

// The causes of an [*Error] that are not a conversion error. Package dbm
// exports them as ErrUnknownColumn, ErrNullValue and ErrDuplicateColumn.
var (
	// ErrUnknownColumn: a result column has no destination field.
	ErrUnknownColumn = errors.New("dbm: column has no destination")
	// ErrNullValue: a NULL arrived for a destination that cannot hold NULL.
	ErrNullValue = errors.New("dbm: NULL into non-nullable destination")
	// ErrDuplicateColumn: two result columns would be stored in the same
	// destination field, or a map[string]any row would get one name twice.
	ErrDuplicateColumn = errors.New("dbm: two columns for one destination")
)

// Error reports a result column that could not be stored. Package dbm
// turns it into its ScanError, field for field; its text is written there.
type Error struct {
	Column string // the result column's name
	Index  int    // the column's position, from 0
	Dest   string // the destination: a Go type, or Type.Field
	Err    error  // ErrUnknownColumn, ErrDuplicateColumn, ErrNullValue or the conversion error
	// Other is, for ErrDuplicateColumn, the position (from 0) of the
	// earlier column that goes to Dest too.
	Other int
	// Unexported is, for ErrUnknownColumn, the unexported field the column
	// would have gone to: reflection cannot set it.
	Unexported string
	// OtherColumn is, for ErrDuplicateColumn, the name of column Other.
	OtherColumn string
}

func (e *Error) Error() string {
	return "dbm: scan: column \"" + e.Column + "\" into " + e.Dest + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ArgError reports a destination the scanner cannot fill, found before any
// row is read. Package dbm turns it into its ArgumentError.
type ArgError struct {
	Func   string // the call the caller made, or "scan"
	Arg    string // "dest", or "T" of a generic helper
	Reason string
}

func (e *ArgError) Error() string { return "dbm: " + e.Func + ": invalid " + e.Arg + ": " + e.Reason }
