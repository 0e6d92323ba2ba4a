package scan

import (
	"database/sql"
	"reflect"
	"unsafe"
)

// This file makes []byte-kinded types (json.RawMessage, a `type Blob
// []byte`) scan like []byte. database/sql stores a []byte value into them
// but not a string, and SQLite returns TEXT (a JSON column's usual type
// there) as a string: `unsupported Scan, storing driver.Value type string
// into type *json.RawMessage`. The scanner gives such a field a scan target
// of its own with the field's memory layout (bytesTarget for the slice,
// bytesPtrTarget for a pointer to it), which takes every value exactly as
// database/sql does for a *[]byte (or a **[]byte).

var rawBytesType = reflect.TypeFor[sql.RawBytes]()

// bytesKinded reports whether t is a slice of a uint8 kind that
// database/sql would not fill from a string: any but []byte itself and
// sql.RawBytes (which database/sql handles), and not a type with a Scan
// method (whose Scan decides).
func bytesKinded(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 &&
		t != bytesType && t != rawBytesType && !reflect.PointerTo(t).Implements(scannerType)
}

// targetType returns the type whose pointer is the scan target of a
// destination of type t: t itself, or for a []byte-kinded t (or an unnamed
// pointer to one) the scanner of the same layout.
func targetType(t reflect.Type) reflect.Type {
	switch {
	case bytesKinded(t):
		return bytesTargetType
	case t.Kind() == reflect.Pointer && t.Name() == "" && bytesKinded(t.Elem()):
		return bytesPtrTargetType
	}
	return t
}

// targetTypeWord is ptrTypeWord(targetType(t)): the type word of the scan
// targets of destinations of type t.
func targetTypeWord(t reflect.Type) unsafe.Pointer { return ptrTypeWord(targetType(t)) }

// bytesTarget scans into a []byte-kinded destination exactly as
// database/sql scans into a *[]byte (a copy of a []byte, the bytes of a
// string, the text of a number, bool or time, nil for NULL), by letting it
// do so through sql.Null's Scan.
type bytesTarget []byte

var bytesTargetType = reflect.TypeFor[bytesTarget]()

func (b *bytesTarget) Scan(src any) error {
	var n sql.Null[[]byte]
	if err := n.Scan(src); err != nil {
		return err
	}
	*b = n.V
	return nil
}

// bytesPtrTarget scans into a pointer to a []byte-kinded type: nil for
// NULL, else a new slice. Its one field has the pointer's layout.
type bytesPtrTarget struct{ p *bytesTarget }

var bytesPtrTargetType = reflect.TypeFor[bytesPtrTarget]()

func (t *bytesPtrTarget) Scan(src any) error {
	if src == nil {
		t.p = nil
		return nil
	}
	b := new(bytesTarget)
	if err := b.Scan(src); err != nil {
		return err
	}
	t.p = b
	return nil
}
