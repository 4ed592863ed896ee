package scenario

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// The functions in this file turn positions in the YAML source into the Source, Line,
// Column, Scenario and Key of an *Error.

// newError returns an *Error positioned at node. A nil node places it at the start of the
// document.
func (d *document) newError(node ast.Node, scenario, key, message string) *Error {
	e := &Error{Source: d.source, Scenario: scenario, Key: key, Message: message}
	if node == nil {
		node = d.body
	}
	if node != nil {
		setPosition(e, startToken(node))
	}
	return e
}

// setPosition copies the line and column of tok into e.
func setPosition(e *Error, tok *token.Token) {
	if tok == nil || tok.Position == nil {
		return
	}
	e.Line = tok.Position.Line
	e.Column = tok.Position.Column
}

// startToken returns the token where node begins in the source. A block mapping's own token
// is its first colon, so the first key is used instead.
func startToken(node ast.Node) *token.Token {
	switch n := node.(type) {
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 {
			return n.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		return n.Key.GetToken()
	}
	return node.GetToken()
}

// decodeError converts an error of the goccy parser or decoder, or a *nodeError from the raw
// types, into an *Error with the scenario and key of the offending node.
func (d *document) decodeError(err error) *Error {
	var ne *nodeError
	if errors.As(err, &ne) {
		scenario, key := d.scenarioKey(ne.node.GetPath())
		return d.newError(ne.node, scenario, key, ne.message)
	}

	var yerr yaml.Error
	if !errors.As(err, &yerr) {
		return &Error{Source: d.source, Message: err.Error()}
	}
	e := &Error{Source: d.source, Message: yerr.GetMessage()}
	tok := yerr.GetToken()
	setPosition(e, tok)
	node := d.findNode(tok)
	if node == nil {
		return e
	}
	e.Scenario, e.Key = d.scenarioKey(node.GetPath())

	var unknown *yaml.UnknownFieldError
	var unexpected *yaml.UnexpectedNodeTypeError
	var duplicate *yaml.DuplicateKeyError
	switch {
	case errors.As(err, &unknown):
		e.Message = unknownKeyMessage(tok.Value, node.GetPath())
	case errors.As(err, &unexpected):
		e.Message = fmt.Sprintf("expected %s, found %s",
			kindName(unexpected.Expected), describeNode(node))
	case errors.As(err, &duplicate):
		// The parser rejects keys written twice, so a duplicate found while decoding repeats
		// a key copied by a merge key. YAML lets the written key win; goccy v1.19.2 does not.
		e.Message = fmt.Sprintf("%q repeats a key that the merge key (<<) copies, which the "+
			"YAML decoder does not allow; remove it here or from the merged mapping",
			lastKey(node.GetPath()))
	}
	return e
}

// checkNodes rejects a mapping key that is not a string, and any YAML tag, reporting the
// first one in the file. The goccy decoder skips a whole mapping that has a key of another
// type, so without this check the mapping's other keys would vanish. Tags are rejected
// because goccy v1.19.2 panics on some tagged values, such as "! 0" in place of a list.
func (d *document) checkNodes() error {
	f := &nodeChecker{}
	ast.Walk(f, d.body)
	if f.found == nil {
		return nil
	}
	scenario, key := d.scenarioKey(f.found.GetPath())
	return d.newError(f.found, scenario, key, f.message)
}

// nodeChecker is an ast.Visitor that records the first node that checkNodes rejects.
type nodeChecker struct {
	found   ast.Node
	message string
}

func (c *nodeChecker) Visit(node ast.Node) ast.Visitor {
	if c.found != nil {
		return nil
	}
	switch n := node.(type) {
	case *ast.TagNode:
		c.found = n
		c.message = fmt.Sprintf("YAML tags such as %s are not supported in scenario files; "+
			"write the plain value", n.Start.Value)
		return nil
	case *ast.MappingValueNode:
		key := ast.Node(n.Key)
		if explicit, ok := key.(*ast.MappingKeyNode); ok {
			key = explicit.Value
		}
		switch key.(type) {
		case *ast.StringNode, *ast.MergeKeyNode:
			return c
		}
		c.found = key
		c.message = unknownKeyMessage(key.GetToken().Value, key.GetPath())
		return nil
	}
	return c
}

// findNode returns the deepest node of the document whose token is tok, or nil.
func (d *document) findNode(tok *token.Token) ast.Node {
	if tok == nil || d.body == nil {
		return nil
	}
	f := &tokenFinder{token: tok}
	ast.Walk(f, d.body)
	return f.found
}

// tokenFinder is an ast.Visitor that records the last node visited with a given token; in a
// depth-first walk that is the deepest one.
type tokenFinder struct {
	token *token.Token
	found ast.Node
}

func (f *tokenFinder) Visit(node ast.Node) ast.Visitor {
	if node.GetToken() == f.token {
		f.found = node
	}
	return f
}

// scenarioPath matches a YAML path inside a scenario, such as $.scenarios[2].flows[0].count.
var scenarioPath = regexp.MustCompile(`^\$\.scenarios\[(\d+)\](?:\.(.*))?$`)

// scenarioKey splits a YAML path into the scenario's name and the key path inside it. When the
// path lies outside a scenario, or the scenario has no valid name, the name is "" and the key
// path starts at the file root.
func (d *document) scenarioKey(path string) (scenario, key string) {
	key = strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	m := scenarioPath.FindStringSubmatch(path)
	if m == nil || m[2] == "" {
		return "", key
	}
	name := d.stringAt("$.scenarios[" + m[1] + "].name")
	if checkName(name) != "" {
		return "", key
	}
	return name, m[2]
}

// stringAt returns the string at a YAML path of the document, or "" if there is none.
func (d *document) stringAt(path string) string {
	if s, ok := d.nodeAt(path).(*ast.StringNode); ok {
		return s.Value
	}
	return ""
}

// entryNode returns the node to report for item i of a list: own if the decoder kept one,
// else the list's item i, else the list. The decoder keeps no node for a null item.
func entryNode(own, list ast.Node, i int) ast.Node {
	if own != nil {
		return own
	}
	if seq, ok := list.(*ast.SequenceNode); ok && i < len(seq.Values) &&
		seq.Values[i].GetToken() != nil {
		return seq.Values[i]
	}
	return list
}

// nodeAt returns the node at a YAML path of the document, such as $.scenarios[2], or nil if
// there is none.
func (d *document) nodeAt(path string) ast.Node {
	p, err := yaml.PathString(path)
	if err != nil {
		return nil
	}
	node, err := p.FilterFile(d.file)
	if err != nil {
		return nil
	}
	return node
}

// keyLevels maps the YAML path of each mapping in a scenario file, with indexes removed, to
// the raw type that decodes it.
var keyLevels = map[string]reflect.Type{
	"$":                              reflect.TypeFor[rawFile](),
	"$.defaults":                     reflect.TypeFor[rawSettings](),
	"$.defaults.retry":               reflect.TypeFor[rawRetry](),
	"$.scenarios[]":                  reflect.TypeFor[rawScenario](),
	"$.scenarios[].retry":            reflect.TypeFor[rawRetry](),
	"$.scenarios[].accounts[]":       reflect.TypeFor[rawGroup](),
	"$.scenarios[].flows[]":          reflect.TypeFor[rawFlow](),
	"$.scenarios[].flows[].price":    reflect.TypeFor[rawRange](),
	"$.scenarios[].flows[].quantity": reflect.TypeFor[rawRange](),
}

// lastKey returns the last key of a YAML path: count for $.scenarios[0].flows[1].count.
func lastKey(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}

// pathIndex matches the indexes in a YAML path.
var pathIndex = regexp.MustCompile(`\[\d+\]`)

// unknownKeyMessage returns the message for a key that is not allowed at path, with the list
// of keys that are.
func unknownKeyMessage(key, path string) string {
	message := fmt.Sprintf("unknown key %q", key)
	parent := path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent = path[:i]
	}
	typ, ok := keyLevels[pathIndex.ReplaceAllString(parent, "[]")]
	if !ok {
		return message
	}
	return message + "; allowed keys here: " + strings.Join(yamlKeys(typ), ", ")
}

// yamlKeys returns the yaml tag names of a struct type, including those of inline fields.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for field := range typ.Fields() {
		name, options, _ := strings.Cut(field.Tag.Get("yaml"), ",")
		switch {
		case options == "inline":
			keys = append(keys, yamlKeys(field.Type)...)
		case name != "":
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}

// kindName names a YAML node type in the words a message uses.
func kindName(t ast.NodeType) string {
	switch t {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	}
	return t.YAMLName()
}
