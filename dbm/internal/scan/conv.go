package scan

import (
	"database/sql"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// This file is the scanner's fast path for flat plans. database/sql's
// Rows.Scan converts each value through a chain of type switches and, for
// most numeric fields, reflect (an int64 column into an int field goes
// through strconv.FormatInt and ParseInt). A fast plan instead has Scan
// store each column's driver value as it is (into an `any`, the cheapest
// destination Scan has), then converts the common cases itself with one
// type switch per column. Each conversion here gives exactly the value
// database/sql would. Anything else (a value of another type, a NULL where
// none fits, a number out of range) makes the row fall back: it is scanned
// again the ordinary way, which gives database/sql's own result or error,
// and the plan stops using the fast path. TestFastConversionsMatchDatabaseSQL
// checks the claim against database/sql for every kind and value class.

// conv is how one column is stored into its field on the fast path.
type conv uint8

const (
	convNone    conv = iota // not handled: the plan uses database/sql for every row
	convString              // a string kind: from string or []byte
	convBytes               // []byte or []byte-kinded (bytes.go): from []byte, string or NULL
	convAny                 // exactly any: the driver value itself
	convBool                // a bool kind: from bool
	convTime                // exactly time.Time: from time.Time
	convFloat64             // a float64 kind: from float64, or a decimal string
	convInt                 // an int kind: from int64 in range, or a decimal string
	convUint                // a uint kind: from int64 in range, or a decimal string
	convScanner             // *T is a sql.Scanner: its Scan, with the value
)

// fieldConv is the fast-path conversion of one field.
type fieldConv struct {
	kind conv
	bits int  // for convInt and convUint: the field's size in bits
	ptr  bool // the field is a *T that the value goes under (nil for NULL)
	// elem is T for ptr fields (what is allocated for a value).
	elem reflect.Type
	// scanTyp is the type word of *T, for convScanner.
	scanTyp unsafe.Pointer
}

var bytesType = reflect.TypeFor[[]byte]()
var anyType = reflect.TypeFor[any]()

// convFor returns the fast-path conversion for a field of type t, or one of
// kind convNone.
func convFor(t reflect.Type) fieldConv {
	if t.Kind() == reflect.Pointer {
		if t.Name() != "" {
			// A defined pointer type (type P *T) has no methods, so
			// database/sql converts into it by reflect alone: it neither
			// calls T's Scan nor turns a string into a []byte there.
			return fieldConv{}
		}
		c := valueConv(t.Elem())
		if c.kind == convNone {
			return fieldConv{}
		}
		c.ptr, c.elem = true, t.Elem()
		return c
	}
	return valueConv(t)
}

func valueConv(t reflect.Type) fieldConv {
	pt := reflect.PointerTo(t)
	if _, ok := pt.MethodByName("Compose"); ok {
		return fieldConv{} // database/sql composes decimals into such types
	}
	if pt.Implements(scannerType) {
		return fieldConv{kind: convScanner, scanTyp: ptrTypeWord(t)}
	}
	switch {
	case t == timeType:
		return fieldConv{kind: convTime}
	case t == bytesType, bytesKinded(t): // the same layout; see bytes.go
		return fieldConv{kind: convBytes}
	case t == anyType:
		return fieldConv{kind: convAny}
	}
	switch t.Kind() {
	case reflect.String:
		return fieldConv{kind: convString}
	case reflect.Bool:
		return fieldConv{kind: convBool}
	case reflect.Float64:
		return fieldConv{kind: convFloat64}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fieldConv{kind: convInt, bits: t.Bits()}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fieldConv{kind: convUint, bits: t.Bits()}
	}
	return fieldConv{}
}

// set stores src into the field at p and reports whether it could.
func (c *fieldConv) set(p unsafe.Pointer, src any) bool {
	if !c.ptr {
		return c.setValue(p, src)
	}
	if src == nil {
		*(*unsafe.Pointer)(p) = nil
		return true
	}
	v := reflect.New(c.elem).UnsafePointer()
	if !c.setValue(v, src) {
		return false
	}
	*(*unsafe.Pointer)(p) = v
	return true
}

func (c *fieldConv) setValue(p unsafe.Pointer, src any) bool {
	switch c.kind {
	case convString:
		switch v := src.(type) {
		case string:
			*(*string)(p) = v
		case []byte:
			*(*string)(p) = string(v)
		default:
			return false
		}
	case convBytes:
		switch v := src.(type) {
		case []byte:
			*(*[]byte)(p) = v // Scan into an any already copied it
		case string:
			*(*[]byte)(p) = []byte(v)
		case nil:
			*(*[]byte)(p) = nil
		default:
			return false
		}
	case convAny:
		*(*any)(p) = src
	case convBool:
		v, ok := src.(bool)
		if !ok {
			return false
		}
		*(*bool)(p) = v
	case convTime:
		v, ok := src.(time.Time)
		if !ok {
			return false
		}
		*(*time.Time)(p) = v
	case convFloat64:
		switch v := src.(type) {
		case float64:
			*(*float64)(p) = v
		case []byte, string:
			f, err := strconv.ParseFloat(asText(v), 64)
			if err != nil {
				return false
			}
			*(*float64)(p) = f
		default:
			return false
		}
	case convInt:
		var n int64
		switch v := src.(type) {
		case int64:
			if c.bits < 64 && (v < -1<<(c.bits-1) || v >= 1<<(c.bits-1)) {
				return false
			}
			n = v
		case []byte, string:
			var err error
			if n, err = strconv.ParseInt(asText(v), 10, c.bits); err != nil {
				return false
			}
		default:
			return false
		}
		setInt(p, c.bits, n)
	case convUint:
		var n uint64
		switch v := src.(type) {
		case int64:
			if v < 0 || c.bits < 64 && v >= 1<<c.bits {
				return false
			}
			n = uint64(v)
		case []byte, string:
			var err error
			if n, err = strconv.ParseUint(asText(v), 10, c.bits); err != nil {
				return false
			}
		default:
			return false
		}
		setUint(p, c.bits, n)
	case convScanner:
		var target any
		setTarget(&target, c.scanTyp, p)
		return target.(sql.Scanner).Scan(src) == nil
	default:
		return false
	}
	return true
}

// asText returns a string or []byte value as a string.
func asText(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v.(string)
}

func setInt(p unsafe.Pointer, bits int, n int64) {
	switch bits {
	case 8:
		*(*int8)(p) = int8(n)
	case 16:
		*(*int16)(p) = int16(n)
	case 32:
		*(*int32)(p) = int32(n)
	default:
		*(*int64)(p) = n
	}
}

func setUint(p unsafe.Pointer, bits int, n uint64) {
	switch bits {
	case 8:
		*(*uint8)(p) = uint8(n)
	case 16:
		*(*uint16)(p) = uint16(n)
	case 32:
		*(*uint32)(p) = uint32(n)
	default:
		*(*uint64)(p) = n
	}
}
