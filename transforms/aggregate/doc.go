// Package aggregate turns contributed events into the level-0 cells of the
// datasets (contract §6): it holds the dataset declarations, the generalization
// hierarchies and the field table, and implements pipeline.Aggregator.
//
// Datasets are declared as data. Config is the YAML declaration (strictly
// decoded: an unknown key is an error); DefaultConfig returns the two
// default datasets, campaign_metrics and usage_patterns, from the embedded
// default.yaml; Validate reports every problem at once, each prefixed with
// its YAML path; Build turns a declaration into pipeline.DatasetSpecs.
//
// Hierarchies are the built-in value, prefix, buckets, groups and star, and
// tables in ARX's CSV format. The region dimension uses the embedded
// region.csv (ISO 3166-1 country → continent → *, unknown → ZZ); industry
// and feature use the platform's taxonomies, the embedded industries.csv
// and features.csv (value → family → *, unknown → other).
//
// Every string dimension has a declared value set: a value or prefix
// hierarchy's values list, a groups hierarchy's groups, or a table's rows.
// Validate refuses a string dimension without one, and New refuses a
// hierarchy whose level 0 is open. A value outside the set reads other (a
// table: its default row) before it is aggregated, so free text never
// becomes a dimension value, however many workspaces share it; the events
// read so are counted per dimension (Aggregator.OtherCounts), never named.
//
// Every sum measure is a dominance measure: Validate refuses a declaration
// whose dominance_measures leave one out.
//
// Guarantees:
//   - only the fields of the field table can be read, and only through
//     accessors compiled at build time: no reflection, no free text, and no
//     field outside contract §3.3's allowlist can reach a cell;
//   - a cell key holds level-0 values in their canonical form (a numeric
//     field as its bucket label, never the number; a string as a member of
//     the dimension's value set, an unknown one as other or the table's
//     default), so no raw value outside a hierarchy's domain reaches the
//     privacy gate;
//   - identifiers are kept only as pseudonyms: the workspace as the
//     contribution's key, the other entities in its entity sets;
//   - sums are overflow-checked; an overflow marks the contribution, which
//     fails its cell closed in the privacy gate, and never panics;
//   - once a cell and its contribution exist, Add allocates nothing (unless
//     an entity set grows).
//
// The package never decides what is published: that is the privacy gate's
// job (package privacy), which sees only the cells built here.
package aggregate
