package catalog

import "fmt"

// maxNesting bounds how deeply collections may nest in a catalog source. A
// JSON catalog nests 6 levels deep (the top object, venues, a venue,
// sections, a section, blocked), so 32 leaves room for any layout.
const maxNesting = 32

// checkNesting rejects src when its flow collections ([ ] and { }) nest
// deeper than maxNesting, or when one line opens more than maxNesting
// compact block sequences ("- - - x"). The YAML parser (goccy/go-yaml
// v1.19.2) takes time quadratic in the depth: 100,000 nested brackets took
// 75 s in a test on a shared 2-core machine, so without this check a small
// malformed file could stall a load for minutes. Block nesting by
// indentation needs indentation that grows with each level, so the size
// limit bounds it.
//
// The scan skips comments and quoted strings but does not parse YAML. A
// bracket inside a plain scalar or a block scalar still counts, so a text
// field with more than maxNesting unmatched brackets would be rejected.
func checkNesting(src []byte) *Error {
	depth := 0
	line, column := 1, 0
	lineStart := true // only indentation and "- " seen so far on this line
	dashes := 0       // compact block sequences opened on this line
	var quote byte    // the quote of the string being scanned, or 0
	comment := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c&0xC0 != 0x80 { // count runes, not the continuation bytes of UTF-8
			column++
		}
		if c == '\n' {
			line, column = line+1, 0
			lineStart, dashes, comment = true, 0, false
			continue
		}
		switch {
		case comment:
			continue
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(src) && src[i+1] != '\n' {
				i++ // skip the escaped byte, which may be a quote
				column++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '#':
			comment = i == 0 || src[i-1] == ' ' || src[i-1] == '\t'
		case '[', '{':
			depth++
		case ']', '}':
			depth = max(depth-1, 0)
		case '-':
			if lineStart && (i+1 == len(src) || src[i+1] == ' ' || src[i+1] == '\n') {
				dashes++
			}
		}
		if c != ' ' && c != '\t' && c != '-' {
			lineStart = false
		}
		if depth > maxNesting || dashes > maxNesting {
			return &Error{Line: line, Column: column, Message: fmt.Sprintf("collections nest deeper than %d levels", maxNesting)}
		}
	}
	return nil
}
