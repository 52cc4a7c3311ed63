package aggregate

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/mya/deid/pipeline"
)

// Aggregator adds events into one dataset's partials (pipeline.Aggregator).
// It is built once per dataset, is immutable but for its counters of
// values read as other (which are atomic), and is safe for concurrent use
// on different partials.
type Aggregator struct {
	spec *pipeline.DatasetSpec
	dims []dimReader
	// sums holds, per sum measure (like DatasetSpec.SumMeasures), the
	// offsets in pipeline.Event of the counters it adds up.
	sums [][]uintptr
	// sets holds, per set entity (like DatasetSpec.SetEntities), how to
	// read its identifier.
	sets []func(*pipeline.Event) []byte
}

var _ pipeline.Aggregator = (*Aggregator)(nil)

// dimReader reads one dimension's level-0 value from an event.
type dimReader struct {
	str    func(*pipeline.Event) string
	num    func(*pipeline.Event) int64
	h      pipeline.Hierarchy
	bucket *Buckets
	// def is what a string value outside the dimension's value set reads
	// as (Other, or a table's default such as ZZ), and others counts the
	// events whose value read as def; both are zero when the hierarchy
	// names no default.
	def    string
	others *atomic.Int64
}

// OtherCount is the number of events whose value of a string dimension
// read as the dimension's default: a value outside the declared value set
// (free text, a stray from a newer taxonomy), an absent or empty one, or
// one the decoder already closed to other. It is a count, never a value.
type OtherCount struct {
	// Dataset and Dimension name the column.
	Dataset, Dimension string
	// Default is what the values read as: "other", or a table's default
	// such as ZZ.
	Default string
	// Events is the number of events aggregated since the aggregator was
	// built.
	Events int64
}

// New compiles spec into an aggregator: every field the spec names is
// resolved in the field table now, so Add does no lookups by name. A
// numeric dimension needs a *Buckets hierarchy, which labels its values.
func New(spec *pipeline.DatasetSpec) (*Aggregator, error) {
	if spec == nil {
		return nil, errors.New("aggregate: no dataset spec")
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("aggregate: dataset %s: %s", spec.Name, fmt.Sprintf(format, args...)))
	}
	a := &Aggregator{spec: spec}
	if len(spec.Kinds) == 0 {
		fail("takes no event kind")
	}
	// unavailable reports a field the spec's event kinds do not carry.
	unavailable := func(what, name string, f field) {
		if !f.availableIn(spec.Kinds) {
			fail("%s: %q is a field of %s only, and the dataset takes %s", what, name, f.kind, kindList(spec.Kinds))
		}
	}
	if len(spec.Dimensions) == 0 || len(spec.Dimensions) > pipeline.MaxDims {
		fail("has %d dimensions, want 1 to %d", len(spec.Dimensions), pipeline.MaxDims)
	}
	for _, d := range spec.Dimensions {
		f, ok := fields[d.Field]
		r := dimReader{h: d.Hierarchy}
		switch {
		case d.Hierarchy == nil:
			fail("dimension %s has no hierarchy", d.Name)
		case !ok:
			fail("dimension %s: unknown field %q", d.Name, d.Field)
		case f.typ == fieldString:
			unavailable("dimension "+d.Name, d.Field, f)
			r.str = f.str
			// A string dimension publishes only values of its declared set:
			// an open level 0 would publish whatever text enough workspaces
			// sent.
			if d.Hierarchy.Domain(0) == nil {
				fail("dimension %s: the string field %q needs a declared value set, and its hierarchy (%s) takes any value at level 0",
					d.Name, d.Field, d.Hierarchy.Describe())
			}
			if df, ok := d.Hierarchy.(defaulter); ok {
				r.def, r.others = df.Default(), new(atomic.Int64)
			}
		case f.typ == fieldNumber:
			b, isBuckets := d.Hierarchy.(*Buckets)
			if !isBuckets {
				fail("dimension %s: numeric field %q needs a buckets hierarchy", d.Name, d.Field)
			}
			unavailable("dimension "+d.Name, d.Field, f)
			r.num, r.bucket = f.num, b
		default:
			fail("dimension %s: field %q is %s, not a dimension field", d.Name, d.Field, f.typ)
		}
		a.dims = append(a.dims, r)
	}
	for _, i := range spec.SumMeasures() {
		m := spec.Measures[i]
		if len(m.Fields) == 0 {
			fail("sum measure %s sums no field", m.Name)
		}
		var fs []uintptr
		for _, name := range m.Fields {
			f, ok := fields[name]
			if !ok || f.typ != fieldCounter {
				fail("sum measure %s: %q is not a counter", m.Name, name)
				continue
			}
			unavailable("sum measure "+m.Name, name, f)
			fs = append(fs, f.at)
		}
		a.sums = append(a.sums, fs)
	}
	for _, i := range spec.SetEntities() {
		e := spec.Entities[i]
		f, ok := fields[e.Field]
		if !ok || f.typ != fieldID {
			fail("entity %s: %q is not an identifier field", e.Name, e.Field)
			continue
		}
		unavailable("entity "+e.Name, e.Field, f)
		a.sets = append(a.sets, f.id)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Spec returns the dataset's declaration.
func (a *Aggregator) Spec() *pipeline.DatasetSpec { return a.spec }

// OtherCounts returns, per string dimension in declaration order, how many
// events added so far had a value that read as the dimension's default
// (see OtherCount): the metric that shows values outside the declared
// value sets, without ever naming one. Safe for concurrent use with Add.
func (a *Aggregator) OtherCounts() []OtherCount {
	var out []OtherCount
	for i, d := range a.dims {
		if d.others != nil {
			out = append(out, OtherCount{Dataset: a.spec.Name, Dimension: a.spec.Dimensions[i].Name, Default: d.def,
				Events: d.others.Load()})
		}
	}
	return out
}

// Add aggregates ev into p under its level-0 cell, in the contribution of
// workspace ws: one event, the sums (overflow-checked: an overflow marks the
// contribution, which fails its cell closed) and the pseudonyms of the
// other entities (an absent identifier adds nothing). The cell is named by
// the partial's ids of the window's values and the event handed to the
// partial's flat table (Partial.Add); once its contribution exists, Add
// allocates nothing unless an entity set grows past its inline members.
func (a *Aggregator) Add(p *pipeline.Partial, ev *pipeline.Event, ws pipeline.Pseudonym, pz *pipeline.Pseudonymizer) {
	ad := pipeline.Addend{WS: ws}
	for i := range a.dims {
		d := &a.dims[i]
		if d.bucket != nil {
			ad.Cell[i] = p.ValueID(i, d.bucket.Label(d.num(ev)), d.h)
			continue
		}
		ad.Cell[i] = p.ValueID(i, d.str(ev), d.h)
		// The default's id, remembered by the partial by the address of
		// def's bytes: no hashing per event.
		if d.others != nil && ad.Cell[i] == p.DefaultID(i, d.def, d.h) {
			d.others.Add(1)
		}
	}
	// The default datasets fit the arrays, which stay on the stack.
	var sums [8]int64
	var members [2]pipeline.Pseudonym
	var has [2]bool
	if len(a.sums) <= len(sums) {
		ad.Sums = sums[:len(a.sums)]
	} else {
		ad.Sums = make([]int64, len(a.sums))
	}
	if len(a.sets) <= len(members) {
		ad.Members, ad.Has = members[:len(a.sets)], has[:len(a.sets)]
	} else {
		ad.Members, ad.Has = make([]pipeline.Pseudonym, len(a.sets)), make([]bool, len(a.sets))
	}
	// Overflow of s+v shows in the sign of (s^t)&(v^t): collected over
	// the counters and tested once.
	var of int64
	for i, offs := range a.sums {
		var s int64
		for _, off := range offs {
			v := *(*int64)(unsafe.Add(unsafe.Pointer(ev), off))
			t := s + v
			of |= (s ^ t) & (v ^ t)
			s = t
		}
		ad.Sums[i] = s
	}
	ad.Overflow = of < 0
	for i, f := range a.sets {
		if id := f(ev); len(id) > 0 {
			ad.Members[i], ad.Has[i] = pz.Of(id), true
		}
	}
	p.Add(&ad)
}
