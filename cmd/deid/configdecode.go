package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeConfig decodes the YAML document b (read from name) over cfg.
// Before anything is decoded it walks the document against the Config
// type and collects every problem at once — an unknown key (with the
// nearest known one), a value of the wrong type, a key given twice, a key
// with no value — each named by its YAML path and line, never by a Go
// type. Only a document without problems is decoded, strictly.
func decodeConfig(name string, b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("config %s is empty: write the settings to change (e.g. \"mode: file\"), or run without --config to use the defaults", name)
		}
		return fmt.Errorf("config %s: %s", name, yamlSyntax(err))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if isNull(root) {
		return fmt.Errorf("config %s is empty: write the settings to change (e.g. \"mode: file\"), or run without --config to use the defaults", name)
	}
	c := checker{root: reflect.TypeOf(cfg).Elem()}
	c.check(root, reflect.TypeOf(cfg).Elem(), "")
	// A second document would be ignored by the decoder: refuse it.
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		c.add(&more, "", `a second YAML document starts here; deid reads one — merge them or remove the "---"`)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %s", name, yamlSyntax(err))
	}
	if len(c.problems) > 0 {
		slices.SortStableFunc(c.problems, func(a, b problem) int { return a.line - b.line })
		if len(c.problems) == 1 {
			return fmt.Errorf("config %s: %s", name, c.problems[0])
		}
		lines := make([]string, len(c.problems))
		for i, p := range c.problems {
			lines[i] = "  " + p.String()
		}
		return fmt.Errorf("config %s: %d problems:\n%s", name, len(c.problems), strings.Join(lines, "\n"))
	}
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(cfg); err != nil {
		// The walk above finds what strict decoding refuses; this is a
		// last resort, without yaml.v3's Go type names.
		return fmt.Errorf("config %s: %s", name, yamlSyntax(err))
	}
	return nil
}

// yamlSyntax is a yaml.v3 error's message without its "yaml: " prefix.
func yamlSyntax(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n  ")
	return strings.TrimPrefix(s, "yaml: ")
}

// problem is one thing wrong in a config document.
type problem struct {
	path string
	line int
	msg  string
}

func (p problem) String() string {
	if p.path == "" {
		return fmt.Sprintf("line %d: %s", p.line, p.msg)
	}
	return fmt.Sprintf("%s (line %d): %s", p.path, p.line, p.msg)
}

// checker walks a YAML node tree against a Go type, using the same rules
// as yaml.v3 (the yaml tag names the key; "-" hides a field).
type checker struct {
	root     reflect.Type
	problems []problem
	// visits counts the nodes walked: aliases can make a small document
	// a huge tree, so the walk stops at maxVisits.
	visits int
}

// maxVisits bounds the nodes one document may expand to.
const maxVisits = 100_000

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func (c *checker) add(n *yaml.Node, path, format string, args ...any) {
	c.problems = append(c.problems, problem{path: path, line: n.Line, msg: fmt.Sprintf(format, args...)})
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	line := n.Line
	if c.visits++; c.visits == maxVisits {
		c.problems = append(c.problems, problem{path: path, line: line,
			msg: "the document expands its YAML aliases (*name) too far; write the values out"})
	}
	if c.visits >= maxVisits {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		c.problems = append(c.problems, problem{path: path, line: line,
			msg: "has no value; give one, or remove the key to keep the default"})
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.problems = append(c.problems, problem{path: path, line: line, msg: yamlSyntax(err)})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.problems = append(c.problems, problem{path: path, line: line, msg: "expected " + expected(t) + ", got " + got(n)})
			return
		}
		c.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.problems = append(c.problems, problem{path: path, line: line, msg: "expected " + expected(t) + ", got " + got(n)})
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.problems = append(c.problems, problem{path: path, line: line, msg: "expected " + expected(t) + ", got " + got(n)})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			c.problems = append(c.problems, problem{path: path, line: line, msg: "expected " + expected(t) + ", got " + got(n)})
		}
	}
}

// mapping checks the keys of mapping n against struct type t.
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge" {
			// A merge key: the merged mappings' keys belong here.
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				c.check(m, t, path)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.add(k, path, "a key must be a plain name, got %s", got(k))
			continue
		}
		p := join(path, k.Value)
		if first, ok := seen[k.Value]; ok {
			c.add(k, p, "given twice (first at line %d); keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			c.add(k, p, "unknown key; %s", c.suggest(k.Value, fields))
			continue
		}
		c.check(v, f, p)
	}
}

// yamlFields returns the YAML keys of struct type t with their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// suggest names the known key nearest to key; else the sections where a
// key of that name belongs; else it lists the known keys.
func (c *checker) suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestD := "", -1
	for _, n := range names {
		d := editDistance(strings.ToLower(key), n)
		if bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(key)/3) {
		return "did you mean " + best + "?"
	}
	if elsewhere := keyPaths(c.root, "", key, 0); len(elsewhere) > 0 {
		return "it belongs under another section: " + strings.Join(elsewhere, " or ")
	}
	if len(names) == 0 {
		return "this section takes no keys"
	}
	return "the known keys here are " + strings.Join(names, ", ")
}

// keyPaths returns the YAML paths, in type t, of the keys named key.
func keyPaths(t reflect.Type, path, key string, depth int) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			path += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || depth > 8 || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	var out []string
	fields := yamlFields(t)
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if name == key {
			out = append(out, join(path, name))
		}
		out = append(out, keyPaths(fields[name], join(path, name), key, depth+1)...)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// expected describes what a value of type t is written as.
func expected(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 30s, 10m or 24h"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list, e.g. [a, b]"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys to values"
	}
	return "another kind of value"
}

// got describes what node n holds.
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "something else"
}

// isNull tells whether n is an empty value (nothing, ~ or null).
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.DocumentNode && len(n.Content) == 0 ||
		n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// join appends key to path; a key that is not a plain name is quoted, so
// the path reads unambiguously.
func join(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
