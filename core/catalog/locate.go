package catalog

import (
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// locate sets the line and column of p from its field path, such as
// venues[0].sections[3].rows, by walking the syntax tree from body. A path
// that ends in a key points at the key, and one that ends in an index
// points at the item. When the tree lacks the field, as it does for a
// missing one, p points at the deepest enclosing node that exists, which
// is the start of the mapping that lacks the key.
//
// NOTE: the walk does not follow aliases or merge keys ("<<"), so a field
// that a section takes from an anchor points at the section instead.
func locate(body ast.Node, p *Error) {
	at := body
	var atKey ast.MapKeyNode // the key of at, when the last step was a key
	for _, step := range splitPath(p.Path) {
		value, key := child(at, step)
		if value == nil && key == nil {
			break
		}
		at, atKey = value, key
	}
	if atKey != nil {
		p.Line, p.Column = position(atKey)
		return
	}
	p.Line, p.Column = position(at)
}

// pathStep is one step of a field path: a mapping key, or a sequence index
// when key is empty.
type pathStep struct {
	key   string
	index int
}

// splitPath splits a field path such as venues[0].sections[3].rows into
// steps. It accepts the paths that Validate builds; a malformed index ends
// the path there.
func splitPath(path string) []pathStep {
	var steps []pathStep
	for part := range strings.SplitSeq(path, ".") {
		name, indexes, _ := strings.Cut(part, "[")
		if name != "" {
			steps = append(steps, pathStep{key: name})
		}
		if indexes == "" {
			continue
		}
		for index := range strings.SplitSeq(strings.TrimSuffix(indexes, "]"), "][") {
			i, err := strconv.Atoi(index)
			if err != nil {
				return steps
			}
			steps = append(steps, pathStep{index: i})
		}
	}
	return steps
}

// child returns what step leads to from n: a mapping value and its key, or
// a sequence item and no key. It returns two nils when n has no such child.
func child(n ast.Node, step pathStep) (ast.Node, ast.MapKeyNode) {
	n = resolve(n)
	if step.key == "" {
		seq, ok := n.(*ast.SequenceNode)
		if !ok || step.index < 0 || step.index >= len(seq.Values) {
			return nil, nil
		}
		return seq.Values[step.index], nil
	}
	m, ok := n.(ast.MapNode)
	if !ok {
		return nil, nil
	}
	for iter := m.MapRange(); iter.Next(); {
		if keyText(iter.Key()) == step.key {
			return iter.Value(), iter.Key()
		}
	}
	return nil, nil
}

// resolve unwraps an anchor or a tag to the node it marks.
func resolve(n ast.Node) ast.Node {
	for range 8 { // an anchor may carry a tag and the reverse; more is malformed
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

// keyText returns the text of a mapping key without its quotes.
func keyText(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tok := k.GetToken(); tok != nil {
		return tok.Value
	}
	return ""
}

// position returns the line and column where n starts, or zeros if the
// node has no token. A block mapping starts at its first key, because its
// own token is the colon after that key.
func position(n ast.Node) (line, column int) {
	switch v := n.(type) {
	case nil:
		return 0, 0
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return position(v.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return position(v.Key)
	}
	tok := n.GetToken()
	if tok == nil || tok.Position == nil {
		return 0, 0
	}
	return tok.Position.Line, tok.Position.Column
}
