package catalog

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxSize bounds a catalog source. The LUX Tour catalog takes about 11 KiB.
const maxSize = 16 << 20

// Parse decodes and validates a catalog in YAML or JSON. It reports every
// problem at once, as an errors.Join of *Error values that give the line
// and column of each problem but no file name. Unknown fields are errors,
// so a misspelt key is not silently ignored.
func Parse(r io.Reader) (*Catalog, error) {
	return ParseNamed("", r)
}

// ParseNamed is Parse for a source called name, such as a file path. Every
// *Error it returns starts with name.
func ParseNamed(name string, r io.Reader) (*Catalog, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read catalog %q: %w", name, err)
	}
	if len(src) > maxSize {
		return nil, &Error{File: name, Message: fmt.Sprintf("larger than the limit of %d MiB", maxSize>>20)}
	}
	return parseSource(name, src)
}

// parseSource checks src in stages. The nesting depth, the YAML syntax and
// the count of documents come first, and each stops at its first problem.
// Then checkShape reports every unknown field and every value of the wrong
// type in the syntax tree. If the tree decodes into a Catalog, the problems
// of Validate are added, each located by its field path, and all of them
// are reported together.
func parseSource(name string, src []byte) (*Catalog, error) {
	// Editors on Windows may start a UTF-8 file with a byte order mark,
	// which would shift the columns of the first line.
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if p := checkNesting(src); p != nil {
		return nil, report(name, []*Error{p})
	}
	file, err := parseYAML(src)
	if err != nil {
		return nil, report(name, []*Error{decodeError(err)})
	}
	body, p := documentBody(file)
	if p != nil {
		return nil, report(name, []*Error{p})
	}

	// The decoder stops at its first problem, so the shape check runs
	// first to report all of them. The decoder still rejects unknown
	// fields, for fields reached through an alias, which the shape check
	// skips.
	shape := checkShape(body)
	var c Catalog
	if body != nil {
		if err := decodeYAML(body, &c); err != nil {
			if len(shape) > 0 {
				return nil, report(name, shape)
			}
			return nil, report(name, []*Error{decodeError(err)})
		}
	}

	// A value that the shape check rejected may decode as a zero value,
	// such as a malformed starts_at, so Validate would report the same
	// field again as missing. The shape problem names the real cause.
	problems := shape
	for _, p := range c.problems() {
		if slices.ContainsFunc(shape, func(s *Error) bool { return s.Path == p.Path }) {
			continue
		}
		locate(body, p)
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return nil, report(name, problems)
	}
	return &c, nil
}

// parseYAML parses src into a syntax tree. See decodeYAML for the recover.
func parseYAML(src []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError("YAML parser", r)
		}
	}()
	return parser.ParseBytes(src, 0)
}

// decodeYAML decodes body into c, rejecting unknown fields. goccy/go-yaml
// v1.19.2 panics on some malformed input, such as a tag on a scalar where
// a sequence belongs (checkShape rejects tags, but the decoder still runs
// to report what it can). The recover turns such a panic into an error, so
// that a bad file cannot crash the process that loads it.
func decodeYAML(body ast.Node, c *Catalog) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicError("YAML decoder", r)
		}
	}()
	return yaml.NodeToValue(body, c, yaml.DisallowUnknownField())
}

// panicError converts the value that a panic in stage passed to recover.
func panicError(stage string, r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("%s failed on this input: %w", stage, err)
	}
	return fmt.Errorf("%s failed on this input: %v", stage, r)
}

// documentBody returns the body of the one document in file, or nil if
// the file is empty.
func documentBody(file *ast.File) (ast.Node, *Error) {
	var body ast.Node
	for _, doc := range file.Docs {
		if doc.Body == nil {
			continue
		}
		if body != nil {
			p := &Error{Message: "a catalog is one YAML document, but a second document starts here"}
			p.Line, p.Column = position(doc.Body)
			if doc.Start != nil {
				p.Line, p.Column = doc.Start.Position.Line, doc.Start.Position.Column
			}
			return nil, p
		}
		body = doc.Body
	}
	// A document of only "null" or "~" is as empty as no document.
	if _, null := body.(*ast.NullNode); null {
		return nil, nil
	}
	return body, nil
}

// decodeError converts an error of the YAML parser or decoder into an
// *Error at the position of the token that it names. The message leaves
// out the source excerpt that the decoder's own Error method adds.
func decodeError(err error) *Error {
	p := &Error{Message: err.Error(), Err: err}
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		p.Message = yerr.GetMessage()
		if tok := yerr.GetToken(); tok != nil && tok.Position != nil {
			p.Line, p.Column = tok.Position.Line, tok.Position.Column
		}
	}
	return p
}

// report sets the file name of every problem, sorts them by position and
// joins them into one error.
func report(name string, problems []*Error) error {
	for _, p := range problems {
		p.File = name
	}
	slices.SortStableFunc(problems, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return joinProblems(problems)
}
