package aggregate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Table is a hierarchy read from a CSV file in ARX's format: one row per
// level-0 value, its generalizations separated by semicolons, the last one
// "*" (e.g. "DE;EU;*"). A value the table does not list is read as the
// table's default row (e.g. "ZZ;ZZ;*"), at level 0 too, so unknown values
// never reach a dataset.
type Table struct {
	name    string
	rows    map[string][]string
	def     []string
	domains [][]string
}

// maxTableErrors caps the problems ParseTable reports for one file.
const maxTableErrors = 20

// ParseTable reads an ARX hierarchy table. name is used in messages, which
// read "name:line: problem". def is the value whose row stands for unknown
// values; it must be in the table. Blank lines are skipped. Every row must
// have the same number of columns (at least two), end in "*", list a
// value once, and agree with the other rows on every generalization (a
// level-1 value always has the same level-2 value).
func ParseTable(name string, r io.Reader, def string) (*Table, error) {
	t := &Table{name: name, rows: map[string][]string{}}
	var errs []error
	fail := func(line int, format string, args ...any) {
		if len(errs) < maxTableErrors {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
	}
	firstLine := map[string]int{}
	// parent[l][v] is the level-(l+1) value of level-l value v; parentLine
	// remembers the line that set it.
	var parent []map[string]string
	var parentLine []map[string]int
	intern := map[string]string{}
	width := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		cols := strings.Split(text, ";")
		for i, c := range cols {
			c = strings.TrimSpace(c)
			if s, ok := intern[c]; ok {
				c = s
			} else {
				intern[c] = c
			}
			cols[i] = c
		}
		if width == 0 {
			if len(cols) < 2 {
				fail(line, "a row needs a value and its generalizations ending in \"*\", separated by ';' (got %q)", text)
				continue
			}
			width = len(cols)
			for range width - 1 {
				parent = append(parent, map[string]string{})
				parentLine = append(parentLine, map[string]int{})
			}
		}
		if len(cols) != width {
			fail(line, "row has %d columns, want %d like the first row: every value needs the same number of levels", len(cols), width)
			continue
		}
		ok := true
		for i, c := range cols {
			switch {
			case c == "":
				fail(line, "column %d is empty", i+1)
				ok = false
			case i == width-1 && c != Star:
				fail(line, "the last column must be \"*\" (got %q)", c)
				ok = false
			case i < width-1 && c == Star:
				fail(line, "column %d is \"*\", which is reserved for the last column", i+1)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if first, dup := firstLine[cols[0]]; dup {
			fail(line, "value %q is listed twice (first on line %d)", cols[0], first)
			continue
		}
		firstLine[cols[0]] = line
		for l := 1; l+1 < width; l++ {
			if p, seen := parent[l][cols[l]]; seen && p != cols[l+1] {
				fail(line, "level-%d value %q generalizes to %q, but line %d says %q: a value has one parent",
					l, cols[l], cols[l+1], parentLine[l][cols[l]], p)
				ok = false
				continue
			}
			parent[l][cols[l]] = cols[l+1]
			parentLine[l][cols[l]] = line
		}
		if ok {
			t.rows[cols[0]] = cols
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) == 0 && len(t.rows) == 0 {
		errs = append(errs, fmt.Errorf("%s: no rows; write one row per value, e.g. \"DE;EU;*\"", name))
	}
	if len(errs) == 0 {
		var ok bool
		if t.def, ok = t.rows[def]; !ok {
			errs = append(errs, fmt.Errorf("%s: the default %q is not a value of the table; add a row for it, e.g. \"%s;%s;*\"",
				name, def, def, def))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t.domains = make([][]string, width)
	for l := range width {
		var d []string
		for _, row := range t.rows {
			d = append(d, row[l])
		}
		slices.Sort(d)
		t.domains[l] = slices.Compact(d)
	}
	return t, nil
}

// Levels returns the table's number of columns.
func (t *Table) Levels() int { return len(t.domains) }

// Generalize returns value's column at level, reading an unknown value as
// the default row; "*" at or beyond the top.
func (t *Table) Generalize(value string, level int) string {
	if level >= len(t.domains)-1 {
		return Star
	}
	row, ok := t.rows[value]
	if !ok {
		row = t.def
	}
	return row[max(level, 0)]
}

// Domain returns the sorted values of the table's column at level: every
// level of a table is closed.
func (t *Table) Domain(level int) []string {
	level = min(max(level, 0), len(t.domains)-1)
	return slices.Clone(t.domains[level])
}

// Default returns the value an unknown value reads as (the default row's
// level 0, e.g. ZZ).
func (t *Table) Default() string { return t.def[0] }

// Describe names the table, its size and its default.
func (t *Table) Describe() string {
	return fmt.Sprintf("table %s: %d values in %d levels, unknown → %s", t.name, len(t.rows), len(t.domains), t.def[0])
}
