package scenario

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Options configures Parse.
type Options struct {
	// Schemas lists the accepted schema variant names. Nil accepts any non-empty name, and an
	// empty non-nil list accepts none.
	Schemas []string
}

// File is a parsed and validated scenario file.
type File struct {
	// Source is the file name given to Parse.
	Source string
	// Scenarios are in file order.
	Scenarios []*Scenario
}

// Parse decodes a scenario file, applies the defaults and validates every scenario, before
// anything runs. source names the file in errors.
//
// Parse returns only the first problem it finds, as an *Error that matches ErrInvalid. It
// checks in stages: YAML syntax, then non-string keys and YAML tags, then types and unknown
// keys, then the defaults block, then each scenario in file order. A problem of an earlier
// stage is reported even when another problem appears higher in the file.
func Parse(data []byte, source string, opts Options) (*File, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if err := checkShape(data, source); err != nil {
		return nil, err
	}
	doc, err := parseDocument(data, source)
	if err != nil {
		return nil, err
	}

	if err := doc.checkNodes(); err != nil {
		return nil, err
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(nil), yaml.DisallowUnknownField())
	if err := dec.DecodeFromNodeContext(context.Background(), doc.body, &raw); err != nil {
		return nil, doc.decodeError(err)
	}

	v := &validator{doc: doc, opts: opts}
	scenarios, err := v.validateFile(&raw)
	if err != nil {
		return nil, err
	}
	return &File{Source: source, Scenarios: scenarios}, nil
}

// Lookup returns the scenario with the given name. When there is none, the error wraps
// ErrNotFound and lists the names in the file.
func (f *File) Lookup(name string) (*Scenario, error) {
	names := make([]string, len(f.Scenarios))
	for i, s := range f.Scenarios {
		if s.Name == name {
			return s, nil
		}
		names[i] = s.Name
	}
	return nil, fmt.Errorf("%w: %q in %s; available scenarios: %s",
		ErrNotFound, name, f.Source, strings.Join(names, ", "))
}

// document is the parsed YAML of a scenario file, kept for locating errors.
type document struct {
	source string
	file   *ast.File
	body   ast.Node
}

// parseDocument parses data as YAML and returns its only document.
func parseDocument(data []byte, source string) (*document, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		doc := &document{source: source}
		return nil, doc.decodeError(err)
	}
	doc := &document{source: source, file: file}

	var bodies []*ast.DocumentNode
	for _, d := range file.Docs {
		if d.Body != nil && d.Body.Type() != ast.NullType {
			bodies = append(bodies, d)
		}
	}
	switch len(bodies) {
	case 0:
		return nil, &Error{Source: source, Line: 1, Column: 1,
			Message: "the file is empty; add a scenarios list"}
	case 1:
		doc.body = bodies[0].Body
		return doc, nil
	}
	extra := bodies[1].Start
	if extra == nil {
		extra = bodies[1].Body.GetToken()
	}
	e := &Error{Source: source, Message: fmt.Sprintf("the file contains %d YAML documents; "+
		"put every scenario in one document under a single scenarios list", len(bodies))}
	setPosition(e, extra)
	return nil, e
}

// Limits on a scenario file's shape, checked before the YAML parser reads it. The parser's
// memory grows much faster than the input for deeply nested flow collections: an 80 KB
// file of nested brackets was measured using 2.5 GB. No real scenario comes near either
// limit.
const (
	MaxFileSize = 1 << 20
	maxNesting  = 32
)

// checkShape rejects a file larger than MaxFileSize or with flow collections ([...] and
// {...}) nested deeper than maxNesting. Brackets inside quotes and comments do not count.
// A quote ends at the end of its line at the latest, so that an apostrophe in a plain
// scalar cannot hide the rest of the file.
func checkShape(data []byte, source string) error {
	if len(data) > MaxFileSize {
		return &Error{Source: source, Message: fmt.Sprintf("the file has %d bytes; the maximum "+
			"is %d (1 MiB)", len(data), MaxFileSize)}
	}
	depth, line, column := 0, 1, 0
	var quote, previous byte = 0, '\n'
	comment := false
	for _, c := range data {
		column++
		after := previous
		previous = c
		switch {
		case c == '\n':
			line, column, comment, quote = line+1, 0, false, 0
			continue
		case comment:
			continue
		case quote != 0:
			if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '#':
			comment = after == ' ' || after == '\t' || after == '\n'
		case '[', '{':
			if depth++; depth > maxNesting {
				return &Error{Source: source, Line: line, Column: column, Message: fmt.Sprintf(
					"collections nested deeper than %d levels; flatten the file", maxNesting)}
			}
		case ']', '}':
			depth = max(0, depth-1)
		}
	}
	return nil
}
