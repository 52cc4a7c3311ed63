package pipeline

// MaxDims is the most dimensions a dataset may declare.
const MaxDims = 8

// Hierarchy generalizes one dimension's level-0 values (contract §6). Level 0 is
// the value itself; the last level is "*". Implementations are immutable and
// safe for concurrent use.
type Hierarchy interface {
	// Levels is the number of levels, counting level 0 and the top "*".
	Levels() int
	// Generalize returns value's generalization at level. Level 0 is the
	// value's canonical form: the value itself, or, for a table hierarchy,
	// the table's default (e.g. "ZZ") for a value it does not know. A level
	// at or beyond the top returns "*".
	Generalize(value string, level int) string
	// Domain lists the values the hierarchy can produce at level, sorted, or
	// nil when the level is open (free-form values such as "parent.leaf").
	Domain(level int) []string
	// Describe says in a few words how the hierarchy generalizes, for the
	// data dictionary.
	Describe() string
}

// Dimension is one grouping column of a dataset.
type Dimension struct {
	// Name is the column name.
	Name string
	// Field is the event field it is computed from (see the aggregate
	// package's field table), e.g. "audience_country" for region.
	Field       string
	Hierarchy   Hierarchy
	Description string
}

// MeasureKind says how a measure is computed.
type MeasureKind uint8

const (
	// MeasureCount counts contributed events.
	MeasureCount MeasureKind = iota + 1
	// MeasureSum sums one or more integer event fields.
	MeasureSum
	// MeasureDistinct counts distinct values of an entity.
	MeasureDistinct
	// MeasureRatio is Scale·Numerator/Denominator over two other measures;
	// null when the denominator is 0.
	MeasureRatio
)

// Measure is one value column of a dataset.
type Measure struct {
	Name string
	Kind MeasureKind
	// Fields are the integer event fields summed (MeasureSum).
	Fields []string
	// Entity names the entity counted (MeasureDistinct).
	Entity string
	// Numerator and Denominator name other measures (MeasureRatio).
	Numerator, Denominator string
	// Scale multiplies a ratio (1000 for a cost per mille); 0 means 1.
	Scale       float64
	Unit        string
	Description string
}

// IsInt tells whether the measure's column is INT64 (else DOUBLE).
func (m Measure) IsInt() bool { return m.Kind != MeasureRatio }

// Entity is an identifier whose distinct values a dataset tracks: to count
// them (a distinct measure) and, when Protected, to apply k-anonymity over
// them. The entity whose Field is "workspace_id" is the key of every
// contribution and is always protected.
type Entity struct {
	Name      string
	Field     string
	Protected bool
}

// MinK is the floor of k (contract §7), the one authority for it: the
// dataset configuration refuses a smaller k, and so does the privacy gate,
// whoever built the spec it is given.
const MinK = 3

// Privacy holds a dataset's privacy parameters (contract §7).
type Privacy struct {
	// K is the minimum distinct count of every protected entity (at least
	// MinK).
	K int
	// DominanceN and DominanceK are the (n, k%) dominance rule.
	DominanceN int
	DominanceK int
	// PPercent is the p% rule's p.
	PPercent int
	// DominanceMeasures name the sum measures (or "events") the dominance
	// and p% rules apply to.
	DominanceMeasures []string
	// Generalization names how cells that fail at level 0 are generalized:
	// GeneralizeLadder or GeneralizeMondrian; "" means the default.
	Generalization string
}

// Generalization strategies (contract §7).
const (
	// GeneralizeLadder raises every failing cell one ladder step at a time,
	// all dimensions together.
	GeneralizeLadder = "ladder"
	// GeneralizeMondrian partitions the failing cells top down along the
	// hierarchies, from one all-"*" cell, while every part passes.
	GeneralizeMondrian = "mondrian"
	// DefaultGeneralization is the strategy of a declaration that names none.
	DefaultGeneralization = GeneralizeMondrian
)

// Generalizations lists the strategies a declaration may name.
var Generalizations = []string{GeneralizeLadder, GeneralizeMondrian}

// Strategy returns the generalization strategy in force: Generalization,
// or the default when it is empty.
func (p Privacy) Strategy() string {
	if p.Generalization == "" {
		return DefaultGeneralization
	}
	return p.Generalization
}

// DatasetSpec declares one dataset: the event kinds it takes, its
// dimensions with their hierarchies, the generalization ladder, its measures,
// entities and privacy parameters. Specs are built once at start and never
// modified.
type DatasetSpec struct {
	Name          string
	Description   string
	SchemaVersion int
	// Kinds are the event kinds aggregated into this dataset.
	Kinds      []EventKind
	Dimensions []Dimension
	// Ladder names a dimension per step; each step raises that dimension by
	// one level.
	Ladder   []string
	Measures []Measure
	Entities []Entity
	Privacy  Privacy
}

// DimIndex returns the index of the named dimension, or -1.
func (s *DatasetSpec) DimIndex(name string) int {
	for i, d := range s.Dimensions {
		if d.Name == name {
			return i
		}
	}
	return -1
}

// MeasureIndex returns the index of the named measure, or -1.
func (s *DatasetSpec) MeasureIndex(name string) int {
	for i, m := range s.Measures {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// EntityIndex returns the index of the named entity, or -1.
func (s *DatasetSpec) EntityIndex(name string) int {
	for i, e := range s.Entities {
		if e.Name == name {
			return i
		}
	}
	return -1
}

// SumMeasures returns the indexes (into Measures) of the MeasureSum
// measures, in order. Contribution.Sums is indexed the same way.
func (s *DatasetSpec) SumMeasures() []int {
	var idx []int
	for i, m := range s.Measures {
		if m.Kind == MeasureSum {
			idx = append(idx, i)
		}
	}
	return idx
}

// SetEntities returns the indexes (into Entities) of the entities other than
// the workspace entity, in order. Contribution.Sets is indexed the same way.
func (s *DatasetSpec) SetEntities() []int {
	var idx []int
	for i, e := range s.Entities {
		if e.Field != "workspace_id" {
			idx = append(idx, i)
		}
	}
	return idx
}

// Levels returns the dimension levels of ladder step n (0 = all level 0).
func (s *DatasetSpec) Levels(step int) [MaxDims]int {
	var lv [MaxDims]int
	for i := 0; i < step && i < len(s.Ladder); i++ {
		if d := s.DimIndex(s.Ladder[i]); d >= 0 {
			lv[d]++
		}
	}
	return lv
}

// LevelSuffix names a dimension's level column: "<dimension>_level".
const LevelSuffix = "_level"

// DimLevels returns the hierarchy level each dimension's values are at in a
// row published at ladder step n, in declaration order: the ladder's level,
// capped at the hierarchy's top, so a dimension at "*" is at its top level.
func (s *DatasetSpec) DimLevels(step int) []int {
	lv := s.Levels(step)
	out := make([]int, len(s.Dimensions))
	for d, dim := range s.Dimensions {
		out[d] = lv[d]
		if dim.Hierarchy != nil {
			out[d] = min(lv[d], dim.Hierarchy.Levels()-1)
		}
	}
	return out
}
