package catalog

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// checkShape compares the syntax tree under body with the Go types of a
// Catalog and returns every mismatch, located: unknown fields, a mapping
// where a sequence belongs, a value of the wrong type. It is stricter than
// the decoder, which would silently accept some values:
//
//   - a whole number must be written in decimal digits, because the
//     decoder truncates 1.5 to 1 and reads 0x10 and 0o20 as 16;
//   - a string field may be a plain decimal number such as id: 101, but a
//     number written another way, a boolean or .inf must be quoted. YAML
//     gives such a value another type, and the decoder stores the text of
//     that value: 0101 is octal and becomes "65", and 1.0 becomes "1";
//   - starts_at must be an RFC 3339 time with a UTC offset, because the
//     decoder turns a malformed time into the zero time, a date alone into
//     midnight UTC, and a time without an offset into UTC.
//
// A null value passes, so that Validate can report a required field as
// missing. An alias is skipped because it stands for a node that is checked
// where its anchor is. Tags such as !!str are rejected: a catalog needs
// none, and the decoder panics on some of them.
func checkShape(body ast.Node) []*Error {
	s := shapeChecker{fields: map[reflect.Type]fieldSet{}}
	s.check(body, body, reflect.TypeFor[Catalog](), "")
	return s.problems
}

var timeType = reflect.TypeFor[time.Time]()

// shapeChecker collects the problems of one syntax tree.
type shapeChecker struct {
	fields   map[reflect.Type]fieldSet
	problems []*Error
}

// fieldSet lists the keys of a struct type: the name in its json tag.
type fieldSet struct {
	types map[string]reflect.Type
	names string // the keys in field order, for messages
}

func (s *shapeChecker) addf(at ast.Node, path, format string, args ...any) {
	p := &Error{Path: path, Message: fmt.Sprintf(format, args...)}
	p.Line, p.Column = position(at)
	s.problems = append(s.problems, p)
}

// check checks node against the Go type t of the field at path. A problem
// is reported at the position of at: the key of a mapping value, like the
// problems of Validate, or the node itself for a sequence item. Recursion
// follows t, so its depth is bounded by the depth of the Catalog types.
func (s *shapeChecker) check(at, node ast.Node, t reflect.Type, path string) {
	switch n := node.(type) {
	case nil, *ast.NullNode, *ast.AliasNode:
		return
	case *ast.TagNode:
		tag := "!!str"
		if n.Start != nil {
			tag = n.Start.Value
		}
		s.addf(at, path, "YAML tags such as %s are not supported; remove the tag, and quote the value if it must stay text", tag)
		return
	case *ast.AnchorNode:
		s.check(at, n.Value, t, path)
		return
	}
	switch {
	case t == timeType:
		s.checkTime(at, node, path)
	case t.Kind() == reflect.Struct:
		s.checkMapping(at, node, t, path)
	case t.Kind() == reflect.Slice:
		s.checkSequence(at, node, t.Elem(), path)
	case t.Kind() == reflect.String:
		s.checkString(at, node, path)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		s.checkInteger(at, node, path)
	}
}

func (s *shapeChecker) checkMapping(at, node ast.Node, t reflect.Type, path string) {
	fields := s.fieldsOf(t)
	m, ok := node.(ast.MapNode)
	if !ok {
		s.addf(at, path, "must be a mapping of the fields %s, got %s", fields.names, describe(node))
		return
	}
	for iter := m.MapRange(); iter.Next(); {
		key := iter.Key()
		if key.IsMergeKey() {
			continue
		}
		name := keyText(key)
		fieldPath := name
		if path != "" {
			fieldPath = path + "." + name
		}
		ft, known := fields.types[name]
		if !known {
			s.addf(key, fieldPath, "unknown field, want one of %s", fields.names)
			continue
		}
		s.check(key, iter.Value(), ft, fieldPath)
	}
}

func (s *shapeChecker) checkSequence(at, node ast.Node, elem reflect.Type, path string) {
	seq, ok := node.(*ast.SequenceNode)
	if !ok {
		s.addf(at, path, "must be a sequence, got %s", describe(node))
		return
	}
	for i, item := range seq.Values {
		s.check(item, item, elem, path+"["+strconv.Itoa(i)+"]")
	}
}

func (s *shapeChecker) checkString(at, node ast.Node, path string) {
	switch n := node.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return
	case *ast.IntegerNode:
		if isDecimal(n.GetToken().Value) {
			return
		}
		s.addf(at, path, "YAML reads %s as a number; write it in quotes to keep the text", describe(node))
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		s.addf(at, path, "YAML reads %s as a number; write it in quotes to keep the text", describe(node))
	case *ast.BoolNode:
		s.addf(at, path, "YAML reads %s as a boolean; write it in quotes to keep the text", describe(node))
	default:
		s.addf(at, path, "must be a string, got %s", describe(node))
	}
}

func (s *shapeChecker) checkInteger(at, node ast.Node, path string) {
	if n, ok := node.(*ast.IntegerNode); ok {
		text := n.GetToken().Value
		if !isDecimal(text) {
			s.addf(at, path, "must be a whole number in decimal digits, got %s", describe(node))
			return
		}
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			s.addf(at, path, "%s is out of range", text)
		}
		return
	}
	s.addf(at, path, "must be a whole number, got %s", describe(node))
}

func (s *shapeChecker) checkTime(at, node ast.Node, path string) {
	if n, ok := node.(*ast.StringNode); ok {
		if _, err := time.Parse(time.RFC3339, n.Value); err == nil {
			return
		}
	}
	s.addf(at, path, "must be a date and time with its UTC offset, such as 2026-03-30T21:00:00+02:00, got %s", describe(node))
}

// fieldsOf returns the keys of the struct type t, computing them once.
func (s *shapeChecker) fieldsOf(t reflect.Type) fieldSet {
	if f, ok := s.fields[t]; ok {
		return f
	}
	f := fieldSet{types: map[string]reflect.Type{}}
	var names []string
	for field := range t.Fields() {
		name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		if name == "" || name == "-" || !field.IsExported() {
			continue
		}
		f.types[name] = field.Type
		names = append(names, name)
	}
	f.names = strings.Join(names, ", ")
	s.fields[t] = f
	return f
}

// isDecimal reports whether text is a whole number in plain decimal, with
// an optional minus sign and no leading zero.
func isDecimal(text string) bool {
	digits := strings.TrimPrefix(text, "-")
	if digits == "" || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// describe names a node for a message: "a mapping", "a sequence", or a
// scalar as written, shortened to 40 characters.
func describe(node ast.Node) string {
	switch node.(type) {
	case ast.MapNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a sequence"
	}
	text := strings.TrimSpace(node.String())
	if r := []rune(text); len(r) > 40 {
		text = string(r[:40]) + "…"
	}
	return text
}
