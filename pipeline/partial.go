package pipeline

import (
	"bytes"
	"slices"
)

// Pseudonym is a keyed HMAC-SHA-256 of an identifier, truncated to 128
// bits (contract §11). State, checkpoints and partials hold only pseudonyms.
type Pseudonym [16]byte

// Compare orders pseudonyms bytewise.
func (p Pseudonym) Compare(q Pseudonym) int { return bytes.Compare(p[:], q[:]) }

// CellKey is a cell's dimension values, in declaration order; slots past
// the dataset's dimensions are empty.
type CellKey [MaxDims]string

// Window is an event-time window [Start, End) in microseconds since the Unix
// epoch, UTC.
type Window struct {
	Start int64
	End   int64
}

// Contribution is one workspace's part of one cell: its event count, the
// sums of the dataset's sum measures, and the sets of the other entities it
// brought (creators, campaigns, users). Merging contributions of the same
// workspace adds the sums and unions the sets.
type Contribution struct {
	Events int64
	// Sums is indexed like DatasetSpec.SumMeasures().
	Sums []int64
	// Sets is indexed like DatasetSpec.SetEntities().
	Sets []EntitySet
	// Overflow is set when a sum overflowed int64; the cell fails closed.
	Overflow bool
}

// NewContribution returns an empty contribution shaped for spec.
func NewContribution(nSums, nSets int) *Contribution {
	return &Contribution{Sums: make([]int64, nSums), Sets: make([]EntitySet, nSets)}
}

// Merge adds o into c, checking for overflow.
func (c *Contribution) Merge(o *Contribution) {
	var ok bool
	if c.Events, ok = AddInt64(c.Events, o.Events); !ok {
		c.Overflow = true
	}
	for i := range c.Sums {
		if c.Sums[i], ok = AddInt64(c.Sums[i], o.Sums[i]); !ok {
			c.Overflow = true
		}
	}
	for i := range c.Sets {
		c.Sets[i].Union(&o.Sets[i])
	}
	c.Overflow = c.Overflow || o.Overflow
}

// AddInt64 returns a+b and whether it did not overflow.
func AddInt64(a, b int64) (int64, bool) {
	s := a + b
	if (s > a) == (b > 0) {
		return s, true
	}
	return s, b == 0
}

// Partial is one dataset's aggregates for one window: from one partition
// (as the worker hands it over) or merged over all partitions (as the
// publisher builds it). Cells maps a level-0 cell to its contributions by
// pseudonymized workspace. While a worker aggregates into the partial (Add)
// the contributions are in a flat table instead (flat.go); Seal moves them
// into Cells, and only then does Cells hold the partial's content.
type Partial struct {
	Dataset string
	Window  Window
	Cells   map[CellKey]map[Pseudonym]*Contribution
	// Events is the number of events contributed into this partial.
	Events int64
	// slab allocates the partial's contributions (NewContribution).
	slab contribSlab
	// flat holds what Add aggregated since the last Seal; nil when sealed.
	flat *flatTable
	// sizeHint sizes the flat table when it is first built: the
	// partition's previous window of the dataset tells how many
	// contributions to expect.
	sizeHint int
}

// NewPartial returns an empty partial.
func NewPartial(dataset string, w Window) *Partial {
	return &Partial{Dataset: dataset, Window: w, Cells: make(map[CellKey]map[Pseudonym]*Contribution)}
}

// Merge adds every contribution of o into p (same dataset and window),
// sealing both. It moves o's cells and contributions into p where p has
// none of its own rather than copying them: o must not be used afterwards.
func (p *Partial) Merge(o *Partial) {
	p.Seal()
	o.Seal()
	for key, byWS := range o.Cells {
		dst := p.Cells[key]
		if dst == nil {
			p.Cells[key] = byWS
			continue
		}
		for ws, c := range byWS {
			if d := dst[ws]; d != nil {
				d.Merge(c)
			} else {
				dst[ws] = c
			}
		}
	}
	p.Events += o.Events
}

// EntitySet is a set of pseudonyms, small-slice first: most workspaces bring
// a handful of creators or users to a cell, so a slice beats a map until it
// grows. The zero value is an empty set.
type EntitySet struct {
	small []Pseudonym
	large map[Pseudonym]struct{}
}

const entitySetSmall = 16

// Add inserts p.
func (s *EntitySet) Add(p Pseudonym) {
	if s.large != nil {
		s.large[p] = struct{}{}
		return
	}
	for _, q := range s.small {
		if q == p {
			return
		}
	}
	if len(s.small) < entitySetSmall {
		s.small = append(s.small, p)
		return
	}
	s.large = make(map[Pseudonym]struct{}, 2*entitySetSmall)
	for _, q := range s.small {
		s.large[q] = struct{}{}
	}
	s.large[p] = struct{}{}
	s.small = nil
}

// Len returns the number of distinct pseudonyms.
func (s *EntitySet) Len() int {
	if s.large != nil {
		return len(s.large)
	}
	return len(s.small)
}

// Union adds every member of o.
func (s *EntitySet) Union(o *EntitySet) {
	if o.large != nil {
		for p := range o.large {
			s.Add(p)
		}
		return
	}
	for _, p := range o.small {
		s.Add(p)
	}
}

// appendMembers appends the members to dst, in no particular order.
func (s *EntitySet) appendMembers(dst []Pseudonym) []Pseudonym {
	if s.large != nil {
		for p := range s.large {
			dst = append(dst, p)
		}
		return dst
	}
	return append(dst, s.small...)
}

// appendTo appends the members' bytes to dst, in no particular order.
func (s *EntitySet) appendTo(dst []byte) []byte {
	if s.large != nil {
		for p := range s.large {
			dst = append(dst, p[:]...)
		}
		return dst
	}
	for _, p := range s.small {
		dst = append(dst, p[:]...)
	}
	return dst
}

// Sorted returns the members in ascending order, a listing that does not
// depend on how the set was built.
func (s *EntitySet) Sorted() []Pseudonym {
	var out []Pseudonym
	if s.large != nil {
		out = make([]Pseudonym, 0, len(s.large))
		for p := range s.large {
			out = append(out, p)
		}
	} else {
		out = slices.Clone(s.small)
	}
	slices.SortFunc(out, Pseudonym.Compare)
	return out
}
