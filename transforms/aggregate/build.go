package aggregate

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/mya/deid/pipeline"
)

// builtinTables are the hierarchy tables that ship with deid.
//
//go:embed region.csv industries.csv features.csv
var builtinTables embed.FS

// builtinNames lists the built-in tables, for messages.
const builtinNames = "region.csv, industries.csv, features.csv"

// BuiltinTables returns the hierarchy tables that ship with deid:
// region.csv (ISO 3166-1 country → continent, unknown → ZZ), and the
// platform's taxonomies industries.csv (industry → family) and
// features.csv (feature → family), each with the row other;other;* for
// values they do not list. They are the value sets of the default
// datasets' region, industry and feature.
func BuiltinTables() fs.FS { return builtinTables }

// Build validates cfg and turns it into dataset specs, reading table
// hierarchies from dir. A table is looked up in dir first (when dir is
// non-nil), then among the built-in tables, so a deployment can ship an
// updated region.csv without a new binary. Every problem is reported,
// joined, each prefixed with its YAML path.
func Build(cfg Config, dir fs.FS) ([]*pipeline.DatasetSpec, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var p problems
	specs := make([]*pipeline.DatasetSpec, 0, len(cfg.Datasets))
	for i := range cfg.Datasets {
		specs = append(specs, cfg.Datasets[i].build(&p, fmt.Sprintf("datasets[%d]", i), dir))
	}
	if err := errors.Join(p...); err != nil {
		return nil, err
	}
	return specs, nil
}

func (d *DatasetConfig) build(p *problems, at string, dir fs.FS) *pipeline.DatasetSpec {
	spec := &pipeline.DatasetSpec{Name: d.Name, Description: d.Description, SchemaVersion: d.SchemaVersion,
		Ladder: slices.Clone(d.Ladder)}
	for _, t := range d.EventTypes {
		spec.Kinds = append(spec.Kinds, eventTypes[t])
	}
	for j, dim := range d.Dimensions {
		h, err := dim.Hierarchy.build(dir)
		if err != nil {
			path := fmt.Sprintf("%s.dimensions[%d].hierarchy", at, j)
			if dim.Hierarchy.Type == TypeTable {
				path += ".table"
			}
			p.addErr(path, err)
			continue
		}
		if f := fields[dim.Field]; f.typ == fieldString && dim.Hierarchy.Type == TypeTable {
			// A table's rows are the dimension's value set, matched after
			// normalization.
			for _, v := range h.Domain(0) {
				if n := f.normalForm(v); n != v {
					p.add(fmt.Sprintf("%s.dimensions[%d].hierarchy.table", at, j), "%s: value %q could never match: values are "+
						"compared after normalization, which makes it %q; write %q", dim.Hierarchy.Table, v, n, n)
				}
			}
		}
		spec.Dimensions = append(spec.Dimensions, pipeline.Dimension{Name: dim.Name, Field: dim.Field, Hierarchy: h,
			Description: dim.Description})
	}
	if len(spec.Dimensions) == len(d.Dimensions) {
		// Validate checked the ladder against the built-in hierarchies; a
		// table's levels are known only now.
		raised := map[string]int{}
		for j, name := range d.Ladder {
			raised[name]++
			h := spec.Dimensions[spec.DimIndex(name)].Hierarchy
			if d.Dimensions[spec.DimIndex(name)].Hierarchy.Type == TypeTable && raised[name] > h.Levels()-1 {
				p.add(fmt.Sprintf("%s.ladder[%d]", at, j), "raises %q to level %d, above its hierarchy's top (level %d, \"*\"); remove the step",
					name, raised[name], h.Levels()-1)
			}
		}
	}
	for _, m := range d.Measures {
		spec.Measures = append(spec.Measures, pipeline.Measure{Name: m.Name, Kind: measureKinds[m.Kind],
			Fields: slices.Clone(m.Fields), Entity: m.Entity, Numerator: m.Numerator, Denominator: m.Denominator,
			Scale: m.Scale, Unit: m.Unit, Description: m.Description})
	}
	for _, e := range d.Entities {
		spec.Entities = append(spec.Entities, pipeline.Entity{Name: e.Name, Field: e.Field, Protected: e.Protected})
	}
	spec.Privacy = pipeline.Privacy{K: d.Privacy.K, DominanceN: d.Privacy.DominanceN, DominanceK: d.Privacy.DominanceK,
		PPercent: d.Privacy.PPercent, DominanceMeasures: slices.Clone(d.Privacy.DominanceMeasures),
		Generalization: d.Privacy.Generalization}
	return spec
}

// build constructs a validated hierarchy declaration.
func (h *HierarchyConfig) build(dir fs.FS) (pipeline.Hierarchy, error) {
	switch h.Type {
	case TypeValue:
		return NewValues(h.Values)
	case TypePrefix:
		return NewPrefix(h.Values)
	case TypeStar:
		return StarHierarchy{}, nil
	case TypeGroups:
		return NewGroups(groups(h.Groups), h.Default)
	case TypeBuckets:
		bs := make([]Bucket, len(h.Buckets))
		for i, b := range h.Buckets {
			bs[i] = Bucket(b)
		}
		return NewBuckets(bs, groups(h.Groups))
	case TypeTable:
		data, err := readTable(dir, h.Table)
		if err != nil {
			return nil, err
		}
		t, err := ParseTable(h.Table, bytes.NewReader(data), h.Default)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("unknown hierarchy type %q", h.Type)
}

func groups(gs []GroupConfig) []Group {
	if gs == nil {
		return nil
	}
	out := make([]Group, len(gs))
	for i, g := range gs {
		out[i] = Group{Name: g.Name, Values: slices.Clone(g.Values)}
	}
	return out
}

// readTable reads a table from dir, falling back to the built-in tables.
func readTable(dir fs.FS, name string) ([]byte, error) {
	if dir != nil {
		data, err := fs.ReadFile(dir, name)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return data, err
		}
	}
	data, err := fs.ReadFile(builtinTables, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such file in the data directory, and no built-in table of that name (built-in: %s)", name, builtinNames)
	}
	return data, err
}
