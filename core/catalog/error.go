package catalog

import (
	"strconv"
	"strings"
)

// Error is one problem in a catalog. Parse, ParseNamed, Load and Builtin
// return an errors.Join of *Error values, one per problem, sorted by
// position. Validate returns them too, without a position because a
// Catalog built in code has no source.
type Error struct {
	// File is the name given to ParseNamed, or the path given to Load. It
	// is empty for Parse and Validate.
	File string
	// Line and Column locate the problem, counting from 1. They are 0 when
	// the position is unknown.
	Line   int
	Column int
	// Path names the field in the catalog, such as venues[0].sections[3].rows.
	// It is empty for syntax errors, which have no field.
	Path    string
	Message string
	// Err is the error of the YAML decoder that this Error reports, or nil.
	Err error
}

// Error formats e as "file:line:column: path: message", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the decoder error that e reports, or nil.
func (e *Error) Unwrap() error {
	return e.Err
}
