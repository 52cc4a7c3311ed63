package aggregate

import (
	"cmp"
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
	_ pipeline.Hierarchy = (*Values)(nil)
	_ pipeline.Hierarchy = (*Prefix)(nil)
	_ pipeline.Hierarchy = StarHierarchy{}
	_ pipeline.Hierarchy = (*Groups)(nil)
	_ pipeline.Hierarchy = (*Buckets)(nil)
	_ pipeline.Hierarchy = (*Table)(nil)
)

// Other is the level-0 value of a string dimension's value outside its
// declared value set: free text never becomes a dimension value, however
// many workspaces share it.
const Other = "other"

var starDomain = []string{Star}

// defaulter is a hierarchy whose level 0 is a closed value set, and
// Default the value it reads any other value as (Other, or a table's
// default row such as ZZ).
type defaulter interface {
	Default() string
}

// valueSet is a string dimension's declared value set, Other included.
type valueSet struct {
	in     map[string]bool
	sorted []string
}

// newValueSet checks and indexes a declared value set. Values are matched
// after normalization, so they must be given as it leaves them; Other is
// always a member.
func newValueSet(values []string) (valueSet, error) {
	var errs []error
	if len(values) == 0 {
		errs = append(errs, errors.New("no values: declare the dimension's value set"))
	}
	s := valueSet{in: map[string]bool{Other: true}, sorted: []string{Other}}
	seen := map[string]bool{}
	for _, v := range values {
		switch {
		case v == "" || v == Star:
			errs = append(errs, fmt.Errorf("value %q is empty or reserved", v))
			continue
		case seen[v]:
			errs = append(errs, fmt.Errorf("value %q is listed twice", v))
			continue
		}
		seen[v] = true
		if !s.in[v] {
			s.in[v] = true
			s.sorted = append(s.sorted, v)
		}
	}
	slices.Sort(s.sorted)
	return s, errors.Join(errs...)
}

// canon returns v when the set has it, else Other.
func (s valueSet) canon(v string) string {
	if s.in[v] {
		return v
	}
	return Other
}

// Values generalizes a value of a declared value set straight to "*"
// (value → *). A value outside the set reads Other, at level 0 already.
type Values struct {
	set valueSet
}

// NewValues returns a value hierarchy over values (Other is added).
func NewValues(values []string) (*Values, error) {
	s, err := newValueSet(values)
	if err != nil {
		return nil, err
	}
	return &Values{set: s}, nil
}

// Levels returns 2: the value and "*".
func (*Values) Levels() int { return 2 }

// Generalize returns value (or Other when the set lacks it) at level 0
// and "*" above.
func (h *Values) Generalize(value string, level int) string {
	if level <= 0 {
		return h.set.canon(value)
	}
	return Star
}

// Domain returns the value set, sorted, at level 0 and ["*"] above.
func (h *Values) Domain(level int) []string {
	if level <= 0 {
		return slices.Clone(h.set.sorted)
	}
	return slices.Clone(starDomain)
}

// Default returns Other.
func (*Values) Default() string { return Other }

// Describe says "value (else other) → *".
func (*Values) Describe() string { return "value (else " + Other + ") → *" }

// Prefix generalizes a dotted taxonomy value "parent.leaf" of a declared
// value set to its parent, then to "*". A value without a dot is its own
// parent. A value outside the set reads Other, at level 0 already.
type Prefix struct {
	set     valueSet
	parents []string
}

// NewPrefix returns a prefix hierarchy over values (Other is added). Each
// value is "parent.leaf" or "parent", with neither part empty.
func NewPrefix(values []string) (*Prefix, error) {
	s, err := newValueSet(values)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	h := &Prefix{set: s}
	for _, v := range s.sorted {
		parent, leaf, dotted := strings.Cut(v, ".")
		if parent == "" || dotted && leaf == "" {
			errs = append(errs, fmt.Errorf("value %q has an empty part; write parent.leaf or parent", v))
			continue
		}
		h.parents = append(h.parents, parent)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.Sort(h.parents)
	h.parents = slices.Compact(h.parents)
	return h, nil
}

// Levels returns 3: the value, its parent and "*".
func (*Prefix) Levels() int { return 3 }

// Generalize returns value (or Other when the set lacks it) at level 0,
// the part before its first dot at level 1 and "*" above.
func (h *Prefix) Generalize(value string, level int) string {
	switch {
	case level <= 0:
		return h.set.canon(value)
	case level == 1:
		v := h.set.canon(value)
		if i := strings.IndexByte(v, '.'); i >= 0 {
			return v[:i]
		}
		return v
	}
	return Star
}

// Domain returns the value set at level 0, the parents at level 1, each
// sorted, and ["*"] above.
func (h *Prefix) Domain(level int) []string {
	switch {
	case level <= 0:
		return slices.Clone(h.set.sorted)
	case level == 1:
		return slices.Clone(h.parents)
	}
	return slices.Clone(starDomain)
}

// Default returns Other.
func (*Prefix) Default() string { return Other }

// Describe says "parent.leaf (else other) → parent → *".
func (*Prefix) Describe() string { return "parent.leaf (else " + Other + ") → parent → *" }

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
// (value → group → *). The groups' values are the dimension's value set: a
// value no group lists reads Other at level 0, and Other generalizes to
// the default group unless a group lists it.
type Groups struct {
	set   valueSet
	group map[string]string
	def   string
	names []string
	desc  string
}

// NewGroups returns a groups hierarchy. Every value must be listed once;
// def (empty means Other) is the group of values no group lists.
func NewGroups(groups []Group, def string) (*Groups, error) {
	if def == "" {
		def = Other
	}
	m, err := groupMap(groups, nil)
	if err != nil {
		return nil, err
	}
	var values []string
	for _, g := range groups {
		values = append(values, g.Values...)
	}
	set, err := newValueSet(values)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, v := range set.sorted {
		names = append(names, cmp.Or(m[v], def))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return &Groups{set: set, group: m, def: def, names: names,
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

// Generalize returns value (or Other when no group lists it) at level 0,
// its group (or the default) at level 1 and "*" above.
func (g *Groups) Generalize(value string, level int) string {
	switch {
	case level <= 0:
		return g.set.canon(value)
	case level == 1:
		if n, ok := g.group[g.set.canon(value)]; ok {
			return n
		}
		return g.def
	}
	return Star
}

// Domain returns the sorted values (with Other) at level 0, the sorted
// group names a value can reach at level 1 and ["*"] above.
func (g *Groups) Domain(level int) []string {
	switch {
	case level <= 0:
		return slices.Clone(g.set.sorted)
	case level == 1:
		return slices.Clone(g.names)
	}
	return slices.Clone(starDomain)
}

// Default returns Other.
func (*Groups) Default() string { return Other }

// Describe lists the groups.
func (g *Groups) Describe() string { return g.desc }
