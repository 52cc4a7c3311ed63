package aggregate

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/mya/deid/pipeline"
	"gopkg.in/yaml.v3"
)

// Config declares the datasets (contract §6). It is data: the defaults are an
// embedded YAML file, and a deployment may replace them with its own.
type Config struct {
	// Datasets are the dataset declarations, in output order.
	Datasets []DatasetConfig `yaml:"datasets"`
}

// DatasetConfig declares one dataset.
type DatasetConfig struct {
	// Name is the dataset's directory name: lower-case letters, digits, '_'.
	Name string `yaml:"name"`
	// Description says what the dataset is for, for the data dictionary.
	Description string `yaml:"description"`
	// SchemaVersion is written into every data file and manifest; raise it
	// whenever the columns change.
	SchemaVersion int `yaml:"schema_version"`
	// EventTypes are the event types aggregated into the dataset; an event
	// type feeds one dataset at most.
	EventTypes []string `yaml:"event_types"`
	// Dimensions are the grouping columns, at most pipeline.MaxDims.
	Dimensions []DimensionConfig `yaml:"dimensions"`
	// Ladder names a dimension per generalization step; each step raises
	// that dimension by one level.
	Ladder []string `yaml:"ladder"`
	// Measures are the value columns.
	Measures []MeasureConfig `yaml:"measures"`
	// Entities are the identifiers counted; the workspace entity is
	// required and always protected.
	Entities []EntityConfig `yaml:"entities"`
	// Privacy holds k, the dominance rule and the p% rule.
	Privacy PrivacyConfig `yaml:"privacy"`
}

// DimensionConfig declares one dimension: the event field it is read from
// and how it generalizes.
type DimensionConfig struct {
	// Name is the column name.
	Name string `yaml:"name"`
	// Field is the event field read, from the field table (e.g.
	// audience_country for region).
	Field string `yaml:"field"`
	// Hierarchy says how the dimension generalizes.
	Hierarchy HierarchyConfig `yaml:"hierarchy"`
	// Description says what the column holds, for the data dictionary.
	Description string `yaml:"description"`
}

// HierarchyConfig declares a dimension's generalization hierarchy. The
// other keys apply to some types only.
type HierarchyConfig struct {
	// Type is one of value, prefix, buckets, groups, table or star.
	Type string `yaml:"type"`
	// Buckets are the ranges of a buckets hierarchy, in ascending order.
	Buckets []BucketConfig `yaml:"buckets,omitempty"`
	// Groups group the labels of a buckets hierarchy, or the values of a
	// groups hierarchy.
	Groups []GroupConfig `yaml:"groups,omitempty"`
	// Table is the ARX file of a table hierarchy, a slash-separated path in
	// the data directory, or the name of a built-in table (region.csv).
	Table string `yaml:"table,omitempty"`
	// Default is a table's row for unknown values (e.g. ZZ), or the group
	// of a value no group lists (default "other").
	Default string `yaml:"default,omitempty"`
	// Values is the value set of a value or prefix hierarchy: the level-0
	// values, as normalization leaves them (trimmed, lower-cased). Any
	// other value reads "other" before it is aggregated, so free text never
	// becomes a dimension value. A groups hierarchy's value set is its
	// groups' values, a table's its rows.
	Values []string `yaml:"values,omitempty"`
}

// BucketConfig is one range of a buckets hierarchy: from From (inclusive)
// to the next bucket's From.
type BucketConfig struct {
	// Label is the bucket's level-0 value, e.g. micro.
	Label string `yaml:"label"`
	// From is the bucket's inclusive lower bound.
	From int64 `yaml:"from"`
}

// GroupConfig is one group of a hierarchy: the values that generalize to
// Name.
type GroupConfig struct {
	// Name is the group's level-1 value, e.g. small.
	Name string `yaml:"name"`
	// Values are the level-0 values (or bucket labels) in the group.
	Values []string `yaml:"values"`
}

// MeasureConfig declares one measure.
type MeasureConfig struct {
	// Name is the column name.
	Name string `yaml:"name"`
	// Kind is count, sum, distinct or ratio. Order statistics (min, max,
	// median, percentiles) do not exist on purpose.
	Kind string `yaml:"kind"`
	// Fields are the counters a sum adds up.
	Fields []string `yaml:"fields,omitempty"`
	// Entity is the entity a distinct measure counts.
	Entity string `yaml:"entity,omitempty"`
	// Numerator and Denominator name the count, sum or distinct measures a
	// ratio divides; the ratio is null when the denominator is 0.
	Numerator   string `yaml:"numerator,omitempty"`
	Denominator string `yaml:"denominator,omitempty"`
	// Scale multiplies a ratio (1000 for a cost per mille); 0 means 1.
	Scale float64 `yaml:"scale,omitempty"`
	// Unit names the measure's unit, for the data dictionary.
	Unit string `yaml:"unit,omitempty"`
	// Description says what the measure is, for the data dictionary.
	Description string `yaml:"description,omitempty"`
}

// EntityConfig declares an identifier whose distinct values the dataset
// tracks.
type EntityConfig struct {
	// Name is what distinct measures call the entity.
	Name string `yaml:"name"`
	// Field is the identifier field: workspace_id, user_id, creator_id or
	// campaign_id.
	Field string `yaml:"field"`
	// Protected subjects the entity to k-anonymity; the workspace entity
	// must be protected.
	Protected bool `yaml:"protected"`
}

// PrivacyConfig holds a dataset's privacy parameters (contract §7).
type PrivacyConfig struct {
	// K is the least distinct count of every protected entity in a
	// published row; at least 3.
	K int `yaml:"k"`
	// DominanceN and DominanceK are the (n, k%) dominance rule: the n
	// largest workspaces may hold at most k% of a dominance measure.
	DominanceN int `yaml:"dominance_n"`
	DominanceK int `yaml:"dominance_k"`
	// PPercent is the p% rule's p: what the other workspaces hold beyond
	// the two largest must be at least p% of the largest.
	PPercent int `yaml:"p_percent"`
	// DominanceMeasures name the count and sum measures the dominance and
	// p% rules apply to. Every sum measure must be listed; the count may
	// be.
	DominanceMeasures []string `yaml:"dominance_measures"`
	// Generalization is how the cells that fail at level 0 are generalized
	// (contract §7): ladder (every failing cell up the ladder, one step at a
	// time, all dimensions together) or mondrian (the failing cells
	// partitioned top down along the hierarchies, from one all-"*" cell,
	// while every part passes). Empty means the default, mondrian. It is
	// policy: another strategy publishes other rows.
	Generalization string `yaml:"generalization"`
}

// Measure kinds as a declaration names them.
const (
	KindCount    = "count"
	KindSum      = "sum"
	KindDistinct = "distinct"
	KindRatio    = "ratio"
)

var measureKinds = map[string]pipeline.MeasureKind{
	KindCount:    pipeline.MeasureCount,
	KindSum:      pipeline.MeasureSum,
	KindDistinct: pipeline.MeasureDistinct,
	KindRatio:    pipeline.MeasureRatio,
}

// MinK is the floor of k (contract §7); pipeline.MinK is its authority.
const MinK = pipeline.MinK

//go:embed default.yaml
var defaultYAML []byte

// DefaultConfig returns the default datasets of contract §6.1 and §6.2, decoded
// from the embedded default.yaml. It panics only if that file is broken,
// which the package's tests rule out.
func DefaultConfig() Config {
	cfg, err := Parse(bytes.NewReader(defaultYAML))
	if err != nil {
		panic("aggregate: embedded default.yaml: " + err.Error())
	}
	return cfg
}

// Parse decodes a dataset declaration strictly: an unknown key is an error.
// It does not validate; call Validate or Build.
func Parse(r io.Reader) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		// An empty document is an empty declaration, which Validate rejects
		// with a message that says what to write.
		return Config{}, fmt.Errorf("datasets: %w", err)
	}
	return cfg, nil
}

// problems collects validation errors, each prefixed with its YAML path.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// addErr adds every error joined in err, each prefixed with path.
func (p *problems) addErr(path string, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.addErr(path, e)
		}
		return
	}
	*p = append(*p, fmt.Errorf("%s: %w", path, err))
}

// Validate reports every problem of the declaration, joined, each prefixed
// with its YAML path and saying how to fix it. Table files are read by
// Build, which reports their problems too.
func (c Config) Validate() error {
	var p problems
	if len(c.Datasets) == 0 {
		p.add("datasets", "must declare at least one dataset (the defaults declare campaign_metrics and usage_patterns)")
	}
	names := map[string]int{}
	owner := map[string]int{}
	for i := range c.Datasets {
		c.Datasets[i].validate(&p, i, names, owner)
	}
	return errors.Join(p...)
}

// reservedColumns cannot be dimensions or measures: the fixed columns of
// every data file and the Hive partition keys readers add.
var reservedColumns = []string{"window_start", "window_end", "generalization_level", "dt", "hour", "minute"}

func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkName reports an empty, malformed or reserved name.
func checkName(p *problems, at, name string) bool {
	switch {
	case name == "":
		p.add(at, "must not be empty")
	case !validName(name):
		p.add(at, "must be lower-case letters, digits and '_', starting with a letter, at most 64 bytes (got %q)", name)
	case slices.Contains(reservedColumns, name):
		p.add(at, "%q is reserved for a fixed column or partition key; choose another name", name)
	default:
		return true
	}
	return false
}

func (d *DatasetConfig) validate(p *problems, i int, names, owner map[string]int) {
	at := fmt.Sprintf("datasets[%d]", i)
	if checkName(p, at+".name", d.Name) {
		if j, dup := names[d.Name]; dup {
			p.add(at+".name", "%q is already the name of datasets[%d]; dataset names must be unique", d.Name, j)
		} else {
			names[d.Name] = i
		}
	}
	if d.SchemaVersion < 1 {
		p.add(at+".schema_version", "must be >= 1 (got %d); raise it whenever the columns change", d.SchemaVersion)
	}
	kinds := d.validateEventTypes(p, at, i, owner)
	cols := map[string]string{}
	levels := d.validateDimensions(p, at, kinds, cols)
	d.validateLadder(p, at, levels)
	entities := map[string]bool{}
	for _, e := range d.Entities {
		entities[e.Name] = true
	}
	measures := d.validateMeasures(p, at, kinds, entities, cols)
	d.validateEntities(p, at, kinds)
	d.validatePrivacy(p, at, measures)
}

func (d *DatasetConfig) validateEventTypes(p *problems, at string, i int, owner map[string]int) []pipeline.EventKind {
	if len(d.EventTypes) == 0 {
		p.add(at+".event_types", "must name at least one event type: campaign.metrics or usage.interaction")
	}
	var kinds []pipeline.EventKind
	for j, t := range d.EventTypes {
		pt := fmt.Sprintf("%s.event_types[%d]", at, j)
		k, ok := eventTypes[t]
		switch {
		case strings.HasPrefix(t, "message.") || t == "support.message":
			p.add(pt, "%q is a message type; messages are never aggregated (contract P4); remove it", t)
			continue
		case !ok:
			p.add(pt, "unknown event type %q; use campaign.metrics or usage.interaction", t)
			continue
		}
		if o, taken := owner[t]; taken {
			if o == i {
				p.add(pt, "%q is listed twice; remove one", t)
			} else {
				p.add(pt, "%q already feeds datasets[%d]; an event type may feed one dataset only", t, o)
			}
			continue
		}
		owner[t] = i
		kinds = append(kinds, k)
	}
	return kinds
}

// validateDimensions checks the dimensions and returns each one's number
// of levels by name (0 when unknown until its table is read).
func (d *DatasetConfig) validateDimensions(p *problems, at string, kinds []pipeline.EventKind, cols map[string]string) map[string]int {
	levels := map[string]int{}
	switch n := len(d.Dimensions); {
	case n == 0:
		p.add(at+".dimensions", "must declare at least one dimension")
	case n > pipeline.MaxDims:
		p.add(at+".dimensions", "declares %d dimensions; at most %d are allowed", n, pipeline.MaxDims)
	}
	for j, dim := range d.Dimensions {
		pd := fmt.Sprintf("%s.dimensions[%d]", at, j)
		if checkName(p, pd+".name", dim.Name) {
			// Every dimension also has a level column, <dimension>_level.
			lc := dim.Name + pipeline.LevelSuffix
			if prev, dup := cols[dim.Name]; dup {
				p.add(pd+".name", "%q is already the column %s; column names must be unique", dim.Name, prev)
			} else if prev, dup := cols[lc]; dup {
				p.add(pd+".name", "its level column %q is already the column %s; column names must be unique", lc, prev)
			} else {
				cols[dim.Name] = pd
				cols[lc] = pd + " (its level column)"
			}
		}
		f, ok := fields[dim.Field]
		switch {
		case dim.Field == "":
			p.add(pd+".field", "must name the event field the dimension is read from")
		case !ok:
			p.add(pd+".field", "unknown field %q; dimension fields are %s, %s", dim.Field,
				fieldNames(fieldString), fieldNames(fieldNumber))
		case f.typ != fieldString && f.typ != fieldNumber:
			p.add(pd+".field", "%q is %s, not a dimension field; dimension fields are %s, %s", dim.Field, f.typ,
				fieldNames(fieldString), fieldNames(fieldNumber))
			ok = false
		case !f.availableIn(kinds):
			p.add(pd+".field", "%q is a field of %s only, and this dataset takes %s", dim.Field, f.kind, kindList(kinds))
		}
		var typ fieldType
		if ok {
			typ = f.typ
		}
		levels[dim.Name] = dim.Hierarchy.validate(p, pd+".hierarchy", typ, dim.Field)
		if typ == fieldString {
			dim.Hierarchy.validateValueSet(p, pd+".hierarchy", dim.Name, dim.Field, f)
		}
	}
	return levels
}

func kindList(kinds []pipeline.EventKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

// validate checks a hierarchy declaration for a field of type typ (0 when
// the field is unknown) and returns its number of levels, or 0 when that is
// only known once its table is read.
func (h *HierarchyConfig) validate(p *problems, at string, typ fieldType, fieldName string) int {
	switch h.Type {
	case TypeValue, TypePrefix, TypeBuckets, TypeGroups, TypeTable, TypeStar:
	case "":
		p.add(at+".type", "must be one of %s", strings.Join(hierarchyTypes, ", "))
		return 0
	default:
		p.add(at+".type", "unknown hierarchy type %q; use one of %s", h.Type, strings.Join(hierarchyTypes, ", "))
		return 0
	}
	switch {
	case typ == fieldNumber && h.Type != TypeBuckets:
		p.add(at+".type", "field %q is numeric and needs a buckets hierarchy (got %s)", fieldName, h.Type)
	case typ == fieldString && h.Type == TypeBuckets:
		p.add(at+".type", "buckets need a numeric field (%s), and %q is a string; use value, prefix, groups or table",
			fieldNames(fieldNumber), fieldName)
	}
	if h.Buckets != nil && h.Type != TypeBuckets {
		p.add(at+".buckets", "applies to buckets hierarchies only; remove it")
	}
	if h.Groups != nil && h.Type != TypeBuckets && h.Type != TypeGroups {
		p.add(at+".groups", "applies to buckets and groups hierarchies only; remove it")
	}
	if h.Table != "" && h.Type != TypeTable {
		p.add(at+".table", "applies to table hierarchies only; remove it")
	}
	if h.Default != "" && h.Type != TypeTable && h.Type != TypeGroups {
		p.add(at+".default", "applies to table and groups hierarchies only; remove it")
	}
	if h.Values != nil && h.Type != TypeValue && h.Type != TypePrefix {
		p.add(at+".values", "applies to value and prefix hierarchies only (a groups hierarchy's value set is its groups' values, a table's its rows); remove it")
	}
	if h.Default == Star {
		p.add(at+".default", "\"*\" is reserved for the top level; name a real value, e.g. ZZ or other")
	}
	switch h.Type {
	case TypeValue:
		return 2
	case TypePrefix:
		return 3
	case TypeStar:
		return 1
	case TypeGroups:
		if len(h.Groups) == 0 {
			p.add(at+".groups", "must list at least one group, e.g. {name: paid, values: [pro, business]}")
		}
		validateGroups(p, at+".groups", h.Groups, nil)
		return 3
	case TypeBuckets:
		labels := validateBuckets(p, at+".buckets", h.Buckets)
		if h.Groups != nil {
			validateGroups(p, at+".groups", h.Groups, labels)
			return 3
		}
		return 2
	}
	// TypeTable.
	switch {
	case h.Table == "":
		p.add(at+".table", "must name an ARX hierarchy file (value;level1;...;*), e.g. region.csv")
	case !fs.ValidPath(h.Table) || h.Table == ".":
		p.add(at+".table", "must be a relative, slash-separated path inside the data directory (got %q)", h.Table)
	}
	if h.Default == "" {
		p.add(at+".default", "must name the table's row for values it does not know, e.g. ZZ")
	}
	return 0
}

// validateValueSet checks that the hierarchy of dimension dim, read from
// the string field fieldName (f), declares the dimension's value set, in the form
// normalization leaves values in: a string dimension without one would
// publish free text whenever enough workspaces sent the same.
func (h *HierarchyConfig) validateValueSet(p *problems, at, dim, fieldName string, f field) {
	// normal reports a value that normalization would change, or that the
	// decoder never produces for a field it closes itself.
	normal := func(path, v string) {
		switch n := f.normalForm(v); {
		case v == "":
		case n != v:
			p.add(path, "%q could never match: values are compared after normalization, which makes it %q; write %q", v, n, n)
		case f.closed != nil && v != Other && !slices.Contains(f.closed, v):
			p.add(path, "%q can never occur: %s is read as one of %s, anything else as other; remove it",
				v, fieldName, strings.Join(f.closed, ", "))
		}
	}
	switch h.Type {
	case TypeValue, TypePrefix:
		if len(h.Values) == 0 {
			p.add(at+".values", "dimension %q reads the string field %q and declares no value set, so free text could "+
				"become a dimension value; list its values (values: [a, b]) or use a table hierarchy (type: table, table: <file>.csv, default: other)",
				dim, fieldName)
			return
		}
		for j, v := range h.Values {
			pv := fmt.Sprintf("%s.values[%d]", at, j)
			parent, leaf, dotted := strings.Cut(v, ".")
			switch {
			case v == "" || v == Star:
				p.add(pv, "must be a value other than \"\" and \"*\" (got %q)", v)
			case slices.Contains(h.Values[:j], v):
				p.add(pv, "%q is listed twice; remove one", v)
			case h.Type == TypePrefix && (parent == "" || dotted && leaf == ""):
				p.add(pv, "%q has an empty part; a prefix hierarchy's values read parent.leaf or parent", v)
			default:
				normal(pv, v)
			}
		}
	case TypeGroups:
		for j, g := range h.Groups {
			for k, v := range g.Values {
				normal(fmt.Sprintf("%s.groups[%d].values[%d]", at, j, k), v)
			}
		}
	}
}

func validateBuckets(p *problems, at string, buckets []BucketConfig) []string {
	if len(buckets) == 0 {
		p.add(at, "must list at least one bucket, e.g. {label: small, from: 0}")
	}
	var labels []string
	for j, b := range buckets {
		pb := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case b.Label == "" || b.Label == Star:
			p.add(pb+".label", "must be a non-empty label other than \"*\" (got %q)", b.Label)
		case slices.Contains(labels, b.Label):
			p.add(pb+".label", "%q is used by another bucket; labels must be unique", b.Label)
		}
		if j > 0 && b.From <= buckets[j-1].From {
			p.add(pb+".from", "must be above the previous bucket's from %d (got %d); list buckets in ascending order",
				buckets[j-1].From, b.From)
		}
		labels = append(labels, b.Label)
	}
	return labels
}

// validateGroups checks groups; when labels is non-nil, they group those
// bucket labels, each exactly once.
func validateGroups(p *problems, at string, groups []GroupConfig, labels []string) {
	group := map[string]string{}
	names := map[string]bool{}
	for j, g := range groups {
		pg := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case g.Name == "" || g.Name == Star:
			p.add(pg+".name", "must be a non-empty name other than \"*\" (got %q)", g.Name)
		case names[g.Name]:
			p.add(pg+".name", "%q is declared twice; merge the two groups", g.Name)
		}
		names[g.Name] = true
		if len(g.Values) == 0 {
			p.add(pg+".values", "must list at least one value")
		}
		for k, v := range g.Values {
			pv := fmt.Sprintf("%s.values[%d]", pg, k)
			if prev, dup := group[v]; dup {
				p.add(pv, "%q is already in group %q; a value belongs to one group", v, prev)
				continue
			}
			group[v] = g.Name
			if labels != nil && !slices.Contains(labels, v) {
				p.add(pv, "%q is not a bucket label; use one of %s", v, strings.Join(labels, ", "))
			}
		}
	}
	for _, l := range labels {
		if _, ok := group[l]; !ok && len(groups) > 0 {
			p.add(at, "bucket %q is in no group; add it to one", l)
		}
	}
}

func (d *DatasetConfig) validateLadder(p *problems, at string, levels map[string]int) {
	raised := map[string]int{}
	for j, name := range d.Ladder {
		pl := fmt.Sprintf("%s.ladder[%d]", at, j)
		n, ok := levels[name]
		if !ok {
			p.add(pl, "%q is not a dimension of this dataset; use one of %s", name, d.dimNames())
			continue
		}
		raised[name]++
		if n > 0 && raised[name] > n-1 {
			p.add(pl, "raises %q to level %d, above its hierarchy's top (level %d, \"*\"); remove the step", name, raised[name], n-1)
		}
	}
}

func (d *DatasetConfig) dimNames() string {
	names := make([]string, len(d.Dimensions))
	for i, dim := range d.Dimensions {
		names[i] = dim.Name
	}
	return strings.Join(names, ", ")
}

// validateEntities checks the entities.
func (d *DatasetConfig) validateEntities(p *problems, at string, kinds []pipeline.EventKind) {
	names := map[string]bool{}
	fieldOf := map[string]string{}
	workspace := false
	for j, e := range d.Entities {
		pe := fmt.Sprintf("%s.entities[%d]", at, j)
		switch {
		case e.Name == "":
			p.add(pe+".name", "must not be empty")
		case !validName(e.Name):
			p.add(pe+".name", "must be lower-case letters, digits and '_', starting with a letter (got %q)", e.Name)
		case names[e.Name]:
			p.add(pe+".name", "%q is declared twice; entity names must be unique", e.Name)
		}
		names[e.Name] = true
		f, ok := fields[e.Field]
		switch {
		case e.Field == "":
			p.add(pe+".field", "must name an identifier field: %s", fieldNames(fieldID))
			continue
		case !ok || f.typ != fieldID:
			p.add(pe+".field", "%q is not an identifier field; use one of %s", e.Field, fieldNames(fieldID))
			continue
		case !f.availableIn(kinds):
			p.add(pe+".field", "%q is a field of %s only, and this dataset takes %s", e.Field, f.kind, kindList(kinds))
		}
		if prev, dup := fieldOf[e.Field]; dup {
			p.add(pe+".field", "%q is already the field of entity %q; declare each identifier once", e.Field, prev)
		}
		fieldOf[e.Field] = e.Name
		if e.Field == WorkspaceField {
			workspace = true
			if !e.Protected {
				p.add(pe+".protected", "the workspace entity is always protected (k-anonymity over workspaces); set protected: true")
			}
		}
	}
	if !workspace {
		p.add(at+".entities", "must declare the workspace entity, e.g. {name: workspaces, field: workspace_id, protected: true}")
	}
}

// validateMeasures checks the measures and returns each one's kind by name.
func (d *DatasetConfig) validateMeasures(p *problems, at string, kinds []pipeline.EventKind, entities map[string]bool,
	cols map[string]string) map[string]string {
	if len(d.Measures) == 0 {
		p.add(at+".measures", "must declare at least one measure, e.g. {name: events, kind: count}")
	}
	kindOf := map[string]string{}
	for _, m := range d.Measures {
		if m.Name != "" {
			kindOf[m.Name] = m.Kind
		}
	}
	for j, m := range d.Measures {
		pm := fmt.Sprintf("%s.measures[%d]", at, j)
		if checkName(p, pm+".name", m.Name) {
			if prev, dup := cols[m.Name]; dup {
				p.add(pm+".name", "%q is already the column %s; column names must be unique", m.Name, prev)
			} else {
				cols[m.Name] = pm
			}
		}
		switch m.Kind {
		case KindCount, KindSum, KindDistinct, KindRatio:
		case "min", "max", "median", "percentile", "mode":
			p.add(pm+".kind", "%q is an order statistic, and order statistics are never published (contract §7): each one is some entity's value; use count, sum, distinct or ratio", m.Kind)
			continue
		default:
			p.add(pm+".kind", "must be one of count, sum, distinct, ratio (got %q)", m.Kind)
			continue
		}
		if m.Fields != nil && m.Kind != KindSum {
			p.add(pm+".fields", "applies to sum measures only; remove it")
		}
		if m.Entity != "" && m.Kind != KindDistinct {
			p.add(pm+".entity", "applies to distinct measures only; remove it")
		}
		if m.Kind != KindRatio {
			if m.Numerator != "" {
				p.add(pm+".numerator", "applies to ratio measures only; remove it")
			}
			if m.Denominator != "" {
				p.add(pm+".denominator", "applies to ratio measures only; remove it")
			}
			if m.Scale != 0 {
				p.add(pm+".scale", "applies to ratio measures only; remove it")
			}
		}
		switch m.Kind {
		case KindSum:
			if len(m.Fields) == 0 {
				p.add(pm+".fields", "must list at least one counter to sum: %s", fieldNames(fieldCounter))
			}
			for k, fn := range m.Fields {
				pf := fmt.Sprintf("%s.fields[%d]", pm, k)
				f, ok := fields[fn]
				switch {
				case !ok || f.typ != fieldCounter:
					p.add(pf, "%q is not a counter; use one of %s", fn, fieldNames(fieldCounter))
				case !f.availableIn(kinds):
					p.add(pf, "%q is a field of %s only, and this dataset takes %s", fn, f.kind, kindList(kinds))
				case slices.Contains(m.Fields[:k], fn):
					p.add(pf, "%q is listed twice; it would be counted twice", fn)
				}
			}
		case KindDistinct:
			switch {
			case m.Entity == "":
				p.add(pm+".entity", "must name the entity counted, one of the dataset's entities")
			case !entities[m.Entity]:
				p.add(pm+".entity", "%q is not an entity of this dataset; declare it under entities", m.Entity)
			}
		case KindRatio:
			for _, side := range []struct{ key, name string }{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
				k, ok := kindOf[side.name]
				switch {
				case side.name == "":
					p.add(pm+"."+side.key, "must name a count, sum or distinct measure of this dataset")
				case !ok:
					p.add(pm+"."+side.key, "%q is not a measure of this dataset", side.name)
				case k == KindRatio:
					p.add(pm+"."+side.key, "%q is a ratio; a ratio is computed from count, sum or distinct measures", side.name)
				}
			}
			if m.Scale < 0 {
				p.add(pm+".scale", "must not be negative (got %g); 0 means 1", m.Scale)
			}
		}
	}
	return kindOf
}

func (d *DatasetConfig) validatePrivacy(p *problems, at string, measures map[string]string) {
	at += ".privacy"
	pv := d.Privacy
	if pv.K < MinK {
		p.add(at+".k", "must be >= %d (got %d)", MinK, pv.K)
	}
	switch {
	case pv.DominanceN < 1:
		p.add(at+".dominance_n", "must be >= 1 (got %d); the default is 2", pv.DominanceN)
	case pv.K >= MinK && pv.DominanceN >= pv.K:
		p.add(at+".dominance_n", "must be below k = %d (got %d), or every cell of k workspaces fails it", pv.K, pv.DominanceN)
	}
	if pv.DominanceK < 1 || pv.DominanceK > 99 {
		p.add(at+".dominance_k", "must be between 1 and 99 percent (got %d); the default is 85", pv.DominanceK)
	}
	if pv.PPercent < 1 || pv.PPercent > 100 {
		p.add(at+".p_percent", "must be between 1 and 100 (got %d); the default is 10", pv.PPercent)
	}
	if len(pv.DominanceMeasures) == 0 {
		p.add(at+".dominance_measures", "must name at least one count or sum measure, e.g. events")
	}
	if pv.Generalization != "" && !slices.Contains(pipeline.Generalizations, pv.Generalization) {
		p.add(at+".generalization", "unknown strategy %q; use %s (or leave it out for %s)", pv.Generalization,
			strings.Join(pipeline.Generalizations, " or "), pipeline.DefaultGeneralization)
	}
	for j, name := range pv.DominanceMeasures {
		pm := fmt.Sprintf("%s.dominance_measures[%d]", at, j)
		k, ok := measures[name]
		switch {
		case !ok:
			p.add(pm, "%q is not a measure of this dataset", name)
		case measureKinds[k] == 0:
			// The measure's kind is reported where it is declared.
		case k != KindCount && k != KindSum:
			p.add(pm, "%q is a %s measure; dominance applies to count and sum measures only", name, k)
		case slices.Contains(pv.DominanceMeasures[:j], name):
			p.add(pm, "%q is listed twice; remove one", name)
		}
	}
	// Every published sum is a dominance measure: a sum left out could be
	// published where one workspace holds nearly all of it, and the row
	// would disclose that workspace's figure.
	var omitted []string
	for _, m := range d.Measures {
		if m.Kind == KindSum && m.Name != "" && !slices.Contains(pv.DominanceMeasures, m.Name) {
			omitted = append(omitted, m.Name)
		}
	}
	if len(omitted) > 0 {
		p.add(at+".dominance_measures", "leaves out the sum measures %s; every published sum must be a dominance measure, "+
			"or a row where one workspace holds nearly all of it discloses that workspace's figure: add them",
			strings.Join(omitted, ", "))
	}
}
