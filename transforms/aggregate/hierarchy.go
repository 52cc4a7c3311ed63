package aggregate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mya/deid/pipeline"
)

// Star is the top of every hierarchy: the value that stands for any value.
const Star = "*"

// Hierarchy types as a declaration names them.
const (
	TypeValue   = "value"
	TypePrefix  = "prefix"
	TypeBuckets = "buckets"
	TypeGroups  = "groups"
	TypeTable   = "table"
	TypeStar    = "star"
)

// hierarchyTypes lists the hierarchy types, for messages.
var hierarchyTypes = []string{TypeValue, TypePrefix, TypeBuckets, TypeGroups, TypeTable, TypeStar}

// Compile-time checks that every hierarchy implements pipeline.Hierarchy.
var (
	_ pipeline.Hierarchy = ValueHierarchy{}
	_ pipeline.Hierarchy = PrefixHierarchy{}
	_ pipeline.Hierarchy = StarHierarchy{}
	_ pipeline.Hierarchy = (*Groups)(nil)
	_ pipeline.Hierarchy = (*Buckets)(nil)
	_ pipeline.Hierarchy = (*Table)(nil)
)

var starDomain = []string{Star}

// ValueHierarchy generalizes a value straight to "*" (value → *). Its level
// 0 is open: any value the field carries.
type ValueHierarchy struct{}

// Levels returns 2: the value and "*".
func (ValueHierarchy) Levels() int { return 2 }

// Generalize returns value at level 0 and "*" above.
func (ValueHierarchy) Generalize(value string, level int) string {
	if level <= 0 {
		return value
	}
	return Star
}

// Domain returns nil for the open level 0 and ["*"] above.
func (ValueHierarchy) Domain(level int) []string {
	if level <= 0 {
		return nil
	}
	return slices.Clone(starDomain)
}

// Describe says "value → *".
func (ValueHierarchy) Describe() string { return "value → *" }

// PrefixHierarchy generalizes a dotted taxonomy value "parent.leaf" to its
// parent, then to "*". A value without a dot is its own parent; a value
// with an empty parent (".leaf") generalizes to "other", so that no row
// ever carries an empty dimension value.
type PrefixHierarchy struct{}

// Levels returns 3: the value, its parent and "*".
func (PrefixHierarchy) Levels() int { return 3 }

// Generalize returns value at level 0, the part before its first dot at
// level 1 and "*" above.
func (PrefixHierarchy) Generalize(value string, level int) string {
	switch {
	case level <= 0:
		return value
	case level == 1:
		i := strings.IndexByte(value, '.')
		switch {
		case i < 0:
			return value
		case i == 0:
			return "other"
		}
		return value[:i]
	}
	return Star
}

// Domain returns nil for the open levels 0 and 1 and ["*"] above.
func (PrefixHierarchy) Domain(level int) []string {
	if level <= 1 {
		return nil
	}
	return slices.Clone(starDomain)
}

// Describe says "parent.leaf → parent → *".
func (PrefixHierarchy) Describe() string { return "parent.leaf → parent → *" }

// StarHierarchy has a single level, "*": the dimension is never broken
// down. It suits a column kept for schema stability.
type StarHierarchy struct{}

// Levels returns 1.
func (StarHierarchy) Levels() int { return 1 }

// Generalize returns "*" at every level.
func (StarHierarchy) Generalize(string, int) string { return Star }

// Domain returns ["*"] at every level.
func (StarHierarchy) Domain(int) []string { return slices.Clone(starDomain) }

// Describe says "*".
func (StarHierarchy) Describe() string { return Star }

// Group names a set of values that generalize to the group's name.
type Group struct {
	// Name is the group's level-1 value.
	Name string
	// Values are the level-0 values in the group.
	Values []string
}

// Groups generalizes a value to the group that lists it, then to "*"
// (value → group → *). A value no group lists generalizes to the default
// group. Level 0 is open.
type Groups struct {
	group map[string]string
	def   string
	names []string
	desc  string
}

// NewGroups returns a groups hierarchy. Every value must be listed once;
// def (empty means "other") is the group of values no group lists.
func NewGroups(groups []Group, def string) (*Groups, error) {
	if def == "" {
		def = "other"
	}
	m, err := groupMap(groups, nil)
	if err != nil {
		return nil, err
	}
	names := []string{def}
	for _, g := range groups {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return &Groups{group: m, def: def, names: names,
		desc: "value → " + describeGroups(groups) + " (else " + def + ") → *"}, nil
}

// groupMap maps each value to its group. When values is non-nil every
// listed value must be one of them, and every one of them must be listed.
func groupMap(groups []Group, values []string) (map[string]string, error) {
	var errs []error
	if len(groups) == 0 {
		errs = append(errs, errors.New("no groups"))
	}
	m := map[string]string{}
	seen := map[string]bool{}
	for _, g := range groups {
		if g.Name == "" || g.Name == Star {
			errs = append(errs, fmt.Errorf("group name %q is empty or reserved", g.Name))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("group %q is declared twice", g.Name))
		}
		seen[g.Name] = true
		if len(g.Values) == 0 {
			errs = append(errs, fmt.Errorf("group %q lists no values", g.Name))
		}
		for _, v := range g.Values {
			if prev, dup := m[v]; dup {
				errs = append(errs, fmt.Errorf("value %q is in groups %q and %q; a value belongs to one group", v, prev, g.Name))
				continue
			}
			if values != nil && !slices.Contains(values, v) {
				errs = append(errs, fmt.Errorf("group %q lists %q, which is not a bucket label", g.Name, v))
			}
			m[v] = g.Name
		}
	}
	for _, v := range values {
		if _, ok := m[v]; !ok {
			errs = append(errs, fmt.Errorf("bucket %q is in no group; every bucket needs one", v))
		}
	}
	return m, errors.Join(errs...)
}

func describeGroups(groups []Group) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = g.Name + " (" + strings.Join(g.Values, ", ") + ")"
	}
	return strings.Join(parts, " · ")
}

// Levels returns 3: the value, its group and "*".
func (g *Groups) Levels() int { return 3 }

// Generalize returns value at level 0, its group (or the default) at level
// 1 and "*" above.
func (g *Groups) Generalize(value string, level int) string {
	switch {
	case level <= 0:
		return value
	case level == 1:
		if n, ok := g.group[value]; ok {
			return n
		}
		return g.def
	}
	return Star
}

// Domain returns nil for the open level 0, the sorted group names
// (including the default) at level 1 and ["*"] above.
func (g *Groups) Domain(level int) []string {
	switch {
	case level <= 0:
		return nil
	case level == 1:
		return slices.Clone(g.names)
	}
	return slices.Clone(starDomain)
}

// Describe lists the groups.
func (g *Groups) Describe() string { return g.desc }
