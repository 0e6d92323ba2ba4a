package dbm

import (
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/sqltext"
)

// rewrite is a statement whose text and arguments [session.bind] changed:
// named parameters became positional ones, or IN lists were expanded.
type rewrite struct {
	text string // the statement as the caller would have written it positionally
	args []any
}

// bind turns a call's named parameters (one struct or map argument and
// :name in the text) into positional ones, and expands each slice argument
// bound alone in an IN list into one placeholder per element. It returns
// ok false, without allocating, when no argument asks for either: the
// common case costs a type switch per argument.
func (m *Manager) bind(fn, query string, args []any) (rw rewrite, changed bool, err error) {
	named, lists := bindKinds(args)
	if !named && !lists {
		return rewrite{}, false, nil
	}
	rw = rewrite{text: query, args: args}
	if named {
		nrw, ok, err := m.bindNamed(fn, query, args[0])
		if err != nil {
			return rewrite{}, false, err
		}
		if ok {
			rw, changed = nrw, true
			_, lists = bindKinds(rw.args) // a field may be a list: IN (:ids)
		}
	}
	if lists {
		erw, expanded, err := expandLists(fn, rw)
		if err != nil {
			return rewrite{}, false, err
		}
		if expanded {
			rw, changed = erw, true
		}
	}
	return rw, changed, nil
}

// bindKinds reports whether args may be a named-parameter source (one
// struct, pointer to a struct, or map with string keys) and whether any is a
// list (see isList).
func bindKinds(args []any) (named, lists bool) {
	for _, a := range args {
		t, ok := boundType(a)
		if !ok {
			continue
		}
		switch t.Kind() {
		case reflect.Slice:
			lists = lists || t.Elem().Kind() != reflect.Uint8
		case reflect.Map:
			named = named || len(args) == 1 && t.Key().Kind() == reflect.String
		case reflect.Struct:
			named = named || len(args) == 1
		case reflect.Pointer:
			named = named || len(args) == 1 && t.Elem().Kind() == reflect.Struct && !t.Implements(valuerType)
		}
	}
	return named, lists
}

// boundType returns a's type when bind may have to look at it: not for the
// types drivers take as they are (the common ones by a type switch, which
// costs no reflection), a driver.Valuer, or database/sql's own arguments.
func boundType(a any) (reflect.Type, bool) {
	switch a.(type) {
	case nil, string, int, int64, int32, float64, bool, []byte, time.Time, driver.Valuer, sql.NamedArg, sql.Out:
		return nil, false
	}
	return reflect.TypeOf(a), true
}

var valuerType = reflect.TypeFor[driver.Valuer]()

// isList reports whether a is a list: a slice other than []byte that is not
// a driver.Valuer.
func isList(a any) bool {
	t, ok := boundType(a)
	return ok && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8
}

// bindNamed replaces each :name of query with a '?' and takes its value from
// src. ok is false when query has no :name: src is then an ordinary
// argument, left to the driver.
func (m *Manager) bindNamed(fn, query string, src any) (rewrite, bool, error) {
	params := sqltext.Params(query, true)
	if len(params) == 0 {
		return rewrite{}, false, nil
	}
	v := reflect.ValueOf(src)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return rewrite{}, false, &ArgumentError{Func: fn, Arg: "args[0]", Reason: "nil " + v.Type().String() + " for the statement's named parameters"}
		}
		v = v.Elem()
	}
	var b strings.Builder
	b.Grow(len(query))
	args := make([]any, 0, len(params))
	last := 0
	for _, p := range params {
		val, err := m.namedValue(fn, v, p.Name)
		if err != nil {
			return rewrite{}, false, err
		}
		b.WriteString(query[last:p.Start])
		b.WriteByte('?')
		last = p.End
		args = append(args, val)
	}
	b.WriteString(query[last:])
	return rewrite{text: b.String(), args: args}, true, nil
}

// namedValue returns the value of :name from v, a struct (fields matched
// as the scanner matches columns: db tag, else the lower-cased name;
// embedded structs searched; "a.b" for a field of a nested or prefixed
// struct) or a map with string keys.
func (m *Manager) namedValue(fn string, v reflect.Value, name string) (any, error) {
	if v.Kind() == reflect.Map {
		val := v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key()))
		if !val.IsValid() {
			return nil, &ArgumentError{Func: fn, Arg: "args[0]", Reason: "no value for :" + name + " (the map has no key " + strconv.Quote(name) + ")"}
		}
		return val.Interface(), nil
	}
	tm := m.scanner.Mapper().TypeMap(v.Type())
	fi, ok := tm.Names[name]
	if !ok {
		fi, ok = tm.Names[strings.ToLower(name)]
	}
	if !ok {
		return nil, &ArgumentError{Func: fn, Arg: "args[0]", Reason: "no value for :" + name + " (" + v.Type().String() + " has no field with db tag or name " + strconv.Quote(name) + ")"}
	}
	for _, i := range fi.Index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil, nil // a field under a nil pointer: NULL
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v.Interface(), nil
}

// expandLists rewrites each list argument bound to a placeholder that
// stands alone in an IN list ("IN (?)", "IN ($2)") into one placeholder
// per element. A list bound elsewhere ("= ANY($1)") is passed on as it is,
// for drivers that send it as an array. Placeholders keep the statement's
// style: '?' stays '?' (rebound later for $n drivers); $n placeholders are
// renumbered.
func expandLists(fn string, rw rewrite) (_ rewrite, expanded bool, _ error) {
	params := sqltext.Params(rw.text, false)
	if len(params) == 0 {
		return rw, false, nil
	}
	var b strings.Builder
	b.Grow(len(rw.text) + 16)
	last := 0
	if params[0].N == 0 { // '?' placeholders: the i-th takes args[i]
		if len(params) != len(rw.args) {
			return rw, false, nil // the driver reports the count
		}
		args := make([]any, 0, len(rw.args)+8)
		for i, p := range params {
			b.WriteString(rw.text[last:p.Start])
			last = p.End
			elems, err := listElems(fn, i, rw.args[i], p.InList)
			if err != nil {
				return rw, false, err
			}
			if elems == nil {
				b.WriteByte('?')
				args = append(args, rw.args[i])
				continue
			}
			for j := range elems {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteByte('?')
			}
			args = append(args, elems...)
			expanded = true
		}
		b.WriteString(rw.text[last:])
		return rewrite{text: b.String(), args: args}, expanded, nil
	}
	// $n placeholders: number anew, in order of first use.
	num := make([]int, len(rw.args))    // arg -> its new number as one value
	list := make([][]int, len(rw.args)) // arg -> the new numbers of its elements
	args := make([]any, 0, len(rw.args)+8)
	for _, p := range params {
		b.WriteString(rw.text[last:p.Start])
		last = p.End
		i := p.N - 1
		if i < 0 || i >= len(rw.args) {
			b.WriteString(rw.text[p.Start:p.End]) // the driver reports it
			continue
		}
		elems, err := listElems(fn, i, rw.args[i], p.InList)
		if err != nil {
			return rw, false, err
		}
		if elems == nil {
			if num[i] == 0 {
				args = append(args, rw.args[i])
				num[i] = len(args)
			}
			b.WriteString("$" + strconv.Itoa(num[i]))
			continue
		}
		expanded = true
		if list[i] == nil {
			for _, e := range elems {
				args = append(args, e)
				list[i] = append(list[i], len(args))
			}
		}
		for j, n := range list[i] {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(n))
		}
	}
	b.WriteString(rw.text[last:])
	for i, a := range rw.args { // arguments no placeholder names stay, numbered last
		if num[i] == 0 && list[i] == nil {
			args = append(args, a)
		}
	}
	return rewrite{text: b.String(), args: args}, expanded, nil
}

// listElems returns the elements of arg when it is a list bound in an IN
// list, or nil. An empty list there is an error: "IN ()" is not SQL.
func listElems(fn string, i int, arg any, inList bool) ([]any, error) {
	if !inList || !isList(arg) {
		return nil, nil
	}
	v := reflect.ValueOf(arg)
	if v.Len() == 0 {
		return nil, &ArgumentError{Func: fn, Arg: "args[" + strconv.Itoa(i) + "]", Reason: "empty " + v.Type().String() +
			" in an IN list (IN () is not SQL): skip the statement, or compare with = ANY(...) and an array"}
	}
	elems := make([]any, v.Len())
	for j := range elems {
		elems[j] = v.Index(j).Interface()
	}
	return elems, nil
}
