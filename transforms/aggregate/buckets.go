package aggregate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Bucket is one labelled range of a numeric field: [From, the next
// bucket's From).
type Bucket struct {
	// Label is the bucket's level-0 value.
	Label string
	// From is the bucket's inclusive lower bound.
	From int64
}

// Buckets turns a numeric field into labelled ranges, optionally groups the
// labels, then generalizes to "*": label → group → *, or label → *.
//
// Level 0 is the label: the aggregator calls Label with the event's number,
// so a row never carries the number itself. A value below the first bucket's
// From is counted in the first bucket (the decoder already rejects such
// values for the default fields).
type Buckets struct {
	from   []int64
	labels []string
	index  map[string]int
	group  map[string]string // nil without groups
	groups []string          // sorted group names
	desc   string
}

// NewBuckets returns a buckets hierarchy. Buckets are given in ascending
// order of From; groups, when given, must place every label in exactly one
// group.
func NewBuckets(buckets []Bucket, groups []Group) (*Buckets, error) {
	var errs []error
	if len(buckets) == 0 {
		errs = append(errs, errors.New("no buckets"))
	}
	b := &Buckets{index: map[string]int{}}
	for i, bk := range buckets {
		if bk.Label == "" || bk.Label == Star {
			errs = append(errs, fmt.Errorf("bucket %d: label %q is empty or reserved", i, bk.Label))
		}
		if _, dup := b.index[bk.Label]; dup {
			errs = append(errs, fmt.Errorf("bucket %d: label %q is used twice", i, bk.Label))
		}
		if i > 0 && bk.From <= buckets[i-1].From {
			errs = append(errs, fmt.Errorf("bucket %d: from %d must be above the previous bucket's %d", i, bk.From, buckets[i-1].From))
		}
		b.index[bk.Label] = i
		b.from = append(b.from, bk.From)
		b.labels = append(b.labels, bk.Label)
	}
	if groups != nil {
		m, err := groupMap(groups, b.labels)
		if err != nil {
			errs = append(errs, err)
		}
		b.group = m
		for _, g := range groups {
			b.groups = append(b.groups, g.Name)
		}
		slices.Sort(b.groups)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	parts := make([]string, len(buckets))
	for i, bk := range buckets {
		hi := "∞"
		if i+1 < len(buckets) {
			hi = strconv.FormatInt(buckets[i+1].From, 10)
		}
		parts[i] = fmt.Sprintf("%s [%d, %s)", bk.Label, bk.From, hi)
	}
	b.desc = "buckets " + strings.Join(parts, " · ") + " → "
	if groups != nil {
		b.desc += describeGroups(groups) + " → "
	}
	b.desc += Star
	return b, nil
}

// Label returns the label of the bucket n falls in.
func (b *Buckets) Label(n int64) string {
	for i := len(b.from) - 1; i > 0; i-- {
		if n >= b.from[i] {
			return b.labels[i]
		}
	}
	return b.labels[0]
}

// Levels returns 3 with groups (label, group, "*") and 2 without.
func (b *Buckets) Levels() int {
	if b.group != nil {
		return 3
	}
	return 2
}

// Generalize returns value's label at level 0, its group at level 1 (with
// groups) and "*" at the top. value is a label, or a decimal integer that
// is bucketed first; anything else has no bucket and is "*" at every level.
func (b *Buckets) Generalize(value string, level int) string {
	label := value
	if _, ok := b.index[value]; !ok {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return Star
		}
		label = b.Label(n)
	}
	switch {
	case level <= 0:
		return label
	case level == 1 && b.group != nil:
		return b.group[label]
	}
	return Star
}

// Domain returns the sorted labels at level 0, the sorted group names at
// level 1 (with groups) and ["*"] at the top.
func (b *Buckets) Domain(level int) []string {
	switch {
	case level <= 0:
		d := slices.Clone(b.labels)
		slices.Sort(d)
		return d
	case level == 1 && b.group != nil:
		return slices.Clone(b.groups)
	}
	return slices.Clone(starDomain)
}

// Describe lists the buckets and groups.
func (b *Buckets) Describe() string { return b.desc }
