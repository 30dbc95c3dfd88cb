package taskfile

import (
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseYAML parses text, which must be one YAML document, and returns its root node: nil for a document with
// nothing in it.
func (l *loader) parseYAML(text string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, l.yamlError(err, text)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, l.yamlError(err, text)
		}
		return nil, &Error{File: l.name, Line: next.Line, Msg: "a task file is one YAML document, and this is a second one"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

// pair is one entry of a YAML mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// kindName names a node's kind for an error message.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "empty"
	}
	return "a value"
}

// resolveAlias follows a YAML alias (*name) to the node it names.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping returns the entries of n, which must be a mapping, in their order. A key given twice is an error, as
// is a merge key (<<), which ACR's parser does not have either.
func (l *loader) mapping(n *yaml.Node, field string) ([]pair, error) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		what := field
		if what == "" {
			what = "the file"
		}
		return nil, l.errorf(n, field, "must be a mapping of fields, and %s is %s", what, kindName(n))
	}
	seen := map[string]*yaml.Node{}
	pairs := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		name := join(field, k.Value)
		if k.Kind != yaml.ScalarNode {
			return nil, l.errorf(k, field, "a field's name must be a plain word, not %s", kindName(k))
		}
		if k.Value == "<<" {
			return nil, l.errorf(k, name, "YAML merge keys are not supported: write the fields out")
		}
		if first, ok := seen[k.Value]; ok {
			return nil, l.errorf(k, name, "given twice (first on line %d)", first.Line)
		}
		seen[k.Value] = k
		pairs = append(pairs, pair{key: k.Value, k: k, v: v})
	}
	return pairs, nil
}

// join returns the path of field name inside parent.
func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// scalar returns the text of n, which must be a single value; an empty value (field: with nothing after it)
// is "".
func (l *loader) scalar(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", l.errorf(n, field, "must be a single value, not %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// list returns the values of n, which must be a list of single values, with their nodes.
func (l *loader) list(n *yaml.Node, field string) ([]string, []*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, nil, l.errorf(n, field, "must be a list, as [\"a\", \"b\"], not %s", kindName(n))
	}
	values := make([]string, 0, len(n.Content))
	nodes := make([]*yaml.Node, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolveAlias(item)
		s, err := l.scalar(item, field+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, nil, err
		}
		values = append(values, s)
		nodes = append(nodes, item)
	}
	return values, nodes, nil
}

// integer returns n as a whole number between lo and hi; unit says what it counts, for the message.
func (l *loader) integer(n *yaml.Node, field string, lo, hi int, unit string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, l.errorf(n, field, "must be a whole number of %s, not %s", unit, describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < int64(lo) || v > int64(hi) {
		return 0, l.errorf(n, field, "%s is out of range: it must be %d to %d %s", n.Value, lo, hi, unit)
	}
	return int(v), nil
}

// boolean returns n as true or false.
func (l *loader) boolean(n *yaml.Node, field string) (bool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, nil
		}
	}
	return false, l.errorf(n, field, "must be true or false, not %s", describe(n))
}

// describe shows a value in a message: the value itself when it is a single one.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}
