package aggregate

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

// specSummary is what contract §6 says about a dataset, in comparable form.
type specSummary struct {
	Name       string
	Kinds      []pipeline.EventKind
	Dimensions []string // "name(field): describe"
	Ladder     []string
	Top        []string // every dimension at the last ladder step
	Measures   []string // "name kind detail"
	Entities   []string
	Privacy    pipeline.Privacy
}

func summarize(s *pipeline.DatasetSpec) specSummary {
	sum := specSummary{Name: s.Name, Kinds: s.Kinds, Ladder: s.Ladder, Privacy: s.Privacy}
	for _, d := range s.Dimensions {
		sum.Dimensions = append(sum.Dimensions, fmt.Sprintf("%s(%s): %s", d.Name, d.Field, d.Hierarchy.Describe()))
	}
	top := s.Levels(len(s.Ladder))
	for i, d := range s.Dimensions {
		sum.Top = append(sum.Top, d.Hierarchy.Generalize("x", top[i]))
	}
	for _, m := range s.Measures {
		var detail string
		switch m.Kind {
		case pipeline.MeasureCount:
			detail = "count"
		case pipeline.MeasureSum:
			detail = "sum " + strings.Join(m.Fields, "+")
		case pipeline.MeasureDistinct:
			detail = "distinct " + m.Entity
		case pipeline.MeasureRatio:
			detail = fmt.Sprintf("ratio %g·%s/%s", max(m.Scale, 1), m.Numerator, m.Denominator)
		}
		sum.Measures = append(sum.Measures, m.Name+" "+detail)
	}
	for _, e := range s.Entities {
		sum.Entities = append(sum.Entities, fmt.Sprintf("%s(%s) protected=%t", e.Name, e.Field, e.Protected))
	}
	return sum
}

func TestDefaultConfigIsSpecSection6(t *testing.T) {
	specs, err := Build(DefaultConfig(), nil)
	if err != nil {
		t.Fatalf("Build(DefaultConfig()): %v", err)
	}
	privacy := func(dom ...string) pipeline.Privacy {
		return pipeline.Privacy{K: 10, DominanceN: 2, DominanceK: 85, PPercent: 10, DominanceMeasures: dom,
			Generalization: pipeline.GeneralizeMondrian}
	}
	want := []specSummary{{
		Name:  "campaign_metrics",
		Kinds: []pipeline.EventKind{pipeline.KindCampaignMetrics},
		Dimensions: []string{
			"platform(platform): value (else other) → *",
			"content_type(content_type): value (else other) → *",
			"industry(industry): table industries.csv: 69 values in 3 levels, unknown → other",
			"region(audience_country): table region.csv: 251 values in 3 levels, unknown → ZZ",
			"follower_tier(follower_count): buckets nano [0, 10000) · micro [10000, 100000) · mid [100000, 500000) · " +
				"macro [500000, 1000000) · mega [1000000, ∞) → small (nano, micro) · large (mid, macro, mega) → *",
		},
		Ladder: []string{"region", "industry", "follower_tier", "content_type", "region", "industry", "follower_tier", "platform"},
		Top:    []string{"*", "*", "*", "*", "*"},
		Measures: []string{
			"events count", "campaigns distinct campaigns", "workspaces distinct workspaces", "creators distinct creators",
			"impressions sum impressions", "reach sum reach", "clicks sum clicks",
			"engagements sum likes+comments+shares+saves", "video_views sum video_views", "conversions sum conversions",
			"spend_cents sum spend_cents", "revenue_cents sum revenue_cents",
			"ctr ratio 1·clicks/impressions", "engagement_rate ratio 1·engagements/impressions",
			"cpm_cents ratio 1000·spend_cents/impressions", "cpa_cents ratio 1·spend_cents/conversions",
		},
		Entities: []string{"workspaces(workspace_id) protected=true", "creators(creator_id) protected=true",
			"campaigns(campaign_id) protected=false"},
		Privacy: privacy("impressions", "reach", "clicks", "engagements", "video_views", "conversions", "spend_cents", "revenue_cents"),
	}, {
		Name:  "usage_patterns",
		Kinds: []pipeline.EventKind{pipeline.KindUsageInteraction},
		Dimensions: []string{
			"feature(feature): table features.csv: 41 values in 3 levels, unknown → other",
			"action(action): value (else other) → *",
			"plan_tier(plan_tier): value (else other) → *",
			"team_size(team_size): buckets 1 [1, 2) · 2-5 [2, 6) · 6-20 [6, 21) · 21-100 [21, 101) · 101+ [101, ∞) → " +
				"small (1, 2-5) · large (6-20, 21-100, 101+) → *",
			"device_type(device_type): value (else other) → *",
		},
		Ladder: []string{"feature", "team_size", "device_type", "action", "feature", "team_size", "plan_tier"},
		Top:    []string{"*", "*", "*", "*", "*"},
		Measures: []string{"events count", "workspaces distinct workspaces", "users distinct users",
			"duration_ms_total sum duration_ms", "duration_ms_mean ratio 1·duration_ms_total/events"},
		Entities: []string{"workspaces(workspace_id) protected=true", "users(user_id) protected=true"},
		Privacy:  privacy("events", "duration_ms_total"),
	}}
	var got []specSummary
	for _, s := range specs {
		got = append(got, summarize(s))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default datasets (-contract §6 +DefaultConfig):\n%s", diff)
	}
	for _, s := range specs {
		// Version 2: continents as names and the <dimension>_level columns.
		if s.SchemaVersion != 2 || s.Description == "" {
			t.Errorf("%s: schema version %d, description %q; want 2 and a description", s.Name, s.SchemaVersion, s.Description)
		}
		for _, d := range s.Dimensions {
			if d.Description == "" {
				t.Errorf("%s.%s has no description for the data dictionary", s.Name, d.Name)
			}
		}
	}
}

func TestDefaultConfigIsAFreshCopy(t *testing.T) {
	a := DefaultConfig()
	a.Datasets[0].Privacy.K = 2
	if b := DefaultConfig(); b.Datasets[0].Privacy.K != 10 {
		t.Errorf("changing one DefaultConfig changed the next: k = %d", b.Datasets[0].Privacy.K)
	}
}

func TestParseOfAnEmptyFileAsksForADataset(t *testing.T) {
	c, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatalf("Parse(empty): %v", err)
	}
	want := []string{"datasets: must declare at least one dataset (the defaults declare campaign_metrics and usage_patterns)"}
	if diff := cmp.Diff(want, errLines(c.Validate())); diff != "" {
		t.Errorf("Validate (-want +got):\n%s", diff)
	}
}

func TestParseIsStrict(t *testing.T) {
	_, err := Parse(strings.NewReader("datasets:\n  - name: x\n    privacy: {k: 10, dominance: 85}\n"))
	if err == nil || !strings.Contains(err.Error(), "field dominance not found") {
		t.Errorf("Parse with a misspelled key: err = %v, want it to name the unknown key", err)
	}
}

// TestValidate lists bad declarations with the messages they must produce:
// every problem, each with its YAML path and the fix.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"the defaults are valid", func(*Config) {}, nil},
		{"no dataset at all", func(c *Config) { c.Datasets = nil },
			[]string{"datasets: must declare at least one dataset (the defaults declare campaign_metrics and usage_patterns)"}},
		{"k below the floor", func(c *Config) { c.Datasets[0].Privacy.K = 2 },
			[]string{"datasets[0].privacy.k: must be >= 3 (got 2)"}},
		{"dominance parameters out of range", func(c *Config) {
			p := &c.Datasets[1].Privacy
			p.DominanceN, p.DominanceK, p.PPercent = 0, 100, 0
		}, []string{
			"datasets[1].privacy.dominance_n: must be >= 1 (got 0); the default is 2",
			"datasets[1].privacy.dominance_k: must be between 1 and 99 percent (got 100); the default is 85",
			"datasets[1].privacy.p_percent: must be between 1 and 100 (got 0); the default is 10",
		}},
		{"dominance n not below k", func(c *Config) { c.Datasets[0].Privacy.K, c.Datasets[0].Privacy.DominanceN = 3, 3 },
			[]string{"datasets[0].privacy.dominance_n: must be below k = 3 (got 3), or every cell of k workspaces fails it"}},
		{"dominance over a ratio or an unknown measure", func(c *Config) {
			c.Datasets[0].Privacy.DominanceMeasures = []string{"ctr", "spend", "creators"}
		}, []string{
			`datasets[0].privacy.dominance_measures[0]: "ctr" is a ratio measure; dominance applies to count and sum measures only`,
			`datasets[0].privacy.dominance_measures[1]: "spend" is not a measure of this dataset`,
			`datasets[0].privacy.dominance_measures[2]: "creators" is a distinct measure; dominance applies to count and sum measures only`,
			"datasets[0].privacy.dominance_measures: leaves out the sum measures impressions, reach, clicks, engagements, video_views, conversions, spend_cents, revenue_cents; every published sum must be a dominance measure, or a row where one workspace holds nearly all of it discloses that workspace's figure: add them",
		}},
		{"no dominance measure", func(c *Config) { c.Datasets[1].Privacy.DominanceMeasures = nil },
			[]string{
				"datasets[1].privacy.dominance_measures: must name at least one count or sum measure, e.g. events",
				"datasets[1].privacy.dominance_measures: leaves out the sum measures duration_ms_total; every published sum must be a dominance measure, or a row where one workspace holds nearly all of it discloses that workspace's figure: add them",
			}},
		{"dominance measures that leave out published sums", func(c *Config) {
			c.Datasets[0].Privacy.DominanceMeasures = []string{"spend_cents", "revenue_cents", "impressions", "conversions", "engagements"}
		}, []string{
			"datasets[0].privacy.dominance_measures: leaves out the sum measures reach, clicks, video_views; every published sum must be a dominance measure, or a row where one workspace holds nearly all of it discloses that workspace's figure: add them",
		}},
		{"the event count may be left out of the dominance measures", func(c *Config) {
			c.Datasets[1].Privacy.DominanceMeasures = []string{"duration_ms_total"}
		}, nil},
		{"an unknown event type and a message type", func(c *Config) {
			c.Datasets[0].EventTypes = []string{"campaign.metric", "message.direct"}
		}, []string{
			`datasets[0].event_types[0]: unknown event type "campaign.metric"; use campaign.metrics or usage.interaction`,
			`datasets[0].event_types[1]: "message.direct" is a message type; messages are never aggregated (contract P4); remove it`,
		}},
		{"one event type feeding two datasets", func(c *Config) {
			c.Datasets[1].EventTypes = []string{"usage.interaction", "campaign.metrics"}
		}, []string{
			`datasets[1].event_types[1]: "campaign.metrics" already feeds datasets[0]; an event type may feed one dataset only`,
		}},
		{"duplicate and malformed dataset names", func(c *Config) {
			c.Datasets[1].Name = "campaign_metrics"
			c.Datasets[0].SchemaVersion = 0
		}, []string{
			"datasets[0].schema_version: must be >= 1 (got 0); raise it whenever the columns change",
			`datasets[1].name: "campaign_metrics" is already the name of datasets[0]; dataset names must be unique`,
		}},
		{"a misspelled field and a field of another event type", func(c *Config) {
			c.Datasets[0].Dimensions[2].Field = "industy"
			c.Datasets[0].Dimensions[0].Field = "feature"
		}, []string{
			`datasets[0].dimensions[0].field: "feature" is a field of usage.interaction only, and this dataset takes campaign.metrics`,
			`datasets[0].dimensions[2].field: unknown field "industy"; dimension fields are action, audience_country, content_type, device_type, feature, industry, plan_tier, platform, follower_count, team_size`,
		}},
		{"a counter used as a dimension", func(c *Config) { c.Datasets[0].Dimensions[0].Field = "clicks" },
			[]string{`datasets[0].dimensions[0].field: "clicks" is a counter, not a dimension field; dimension fields are action, audience_country, content_type, device_type, feature, industry, plan_tier, platform, follower_count, team_size`}},
		{"a numeric field without buckets, and buckets on a string", func(c *Config) {
			c.Datasets[0].Dimensions[4].Hierarchy = HierarchyConfig{Type: TypeValue}
			c.Datasets[0].Dimensions[0].Hierarchy = HierarchyConfig{Type: TypeBuckets, Buckets: []BucketConfig{{"a", 0}}}
		}, []string{
			`datasets[0].dimensions[0].hierarchy.type: buckets need a numeric field (follower_count, team_size), and "platform" is a string; use value, prefix, groups or table`,
			`datasets[0].dimensions[4].hierarchy.type: field "follower_count" is numeric and needs a buckets hierarchy (got value)`,
			// The ladder raises follower_tier twice, and a value hierarchy has one level above 0.
			`datasets[0].ladder[6]: raises "follower_tier" to level 2, above its hierarchy's top (level 1, "*"); remove the step`,
		}},
		{"an unknown generalization strategy", func(c *Config) {
			c.Datasets[1].Privacy.Generalization = "bottom-up"
		}, []string{
			`datasets[1].privacy.generalization: unknown strategy "bottom-up"; use ladder or mondrian (or leave it out for mondrian)`,
		}},
		{"an unknown hierarchy type and keys of another type", func(c *Config) {
			c.Datasets[0].Dimensions[0].Hierarchy = HierarchyConfig{Type: "tree"}
			c.Datasets[0].Dimensions[1].Hierarchy = HierarchyConfig{Type: TypeValue, Table: "x.csv", Default: "ZZ",
				Groups: []GroupConfig{{"g", []string{"a"}}}, Values: []string{"post"}}
			c.Datasets[0].Dimensions[3].Hierarchy.Values = []string{"DE"}
		}, []string{
			`datasets[0].dimensions[0].hierarchy.type: unknown hierarchy type "tree"; use one of value, prefix, buckets, groups, table, star`,
			"datasets[0].dimensions[1].hierarchy.groups: applies to buckets and groups hierarchies only; remove it",
			"datasets[0].dimensions[1].hierarchy.table: applies to table hierarchies only; remove it",
			"datasets[0].dimensions[1].hierarchy.default: applies to table and groups hierarchies only; remove it",
			"datasets[0].dimensions[3].hierarchy.values: applies to value and prefix hierarchies only (a groups hierarchy's value set is its groups' values, a table's its rows); remove it",
		}},
		{"string dimensions without a value set", func(c *Config) {
			c.Datasets[0].Dimensions[0].Hierarchy = HierarchyConfig{Type: TypeValue}
			c.Datasets[0].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypePrefix}
			c.Datasets[1].Dimensions[4].Hierarchy.Values = []string{}
		}, []string{
			`datasets[0].dimensions[0].hierarchy.values: dimension "platform" reads the string field "platform" and declares no value set, so free text could become a dimension value; list its values (values: [a, b]) or use a table hierarchy (type: table, table: <file>.csv, default: other)`,
			`datasets[0].dimensions[2].hierarchy.values: dimension "industry" reads the string field "industry" and declares no value set, so free text could become a dimension value; list its values (values: [a, b]) or use a table hierarchy (type: table, table: <file>.csv, default: other)`,
			`datasets[1].dimensions[4].hierarchy.values: dimension "device_type" reads the string field "device_type" and declares no value set, so free text could become a dimension value; list its values (values: [a, b]) or use a table hierarchy (type: table, table: <file>.csv, default: other)`,
		}},
		{"a value set with values that could never match, listed twice or without a parent", func(c *Config) {
			c.Datasets[0].Dimensions[0].Hierarchy.Values = []string{"Instagram", "tiktok", " x", "tiktok", "*", ""}
			c.Datasets[0].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypePrefix, Values: []string{"beauty.skincare", ".leaf", "beauty."}}
			c.Datasets[0].Dimensions[3].Hierarchy = HierarchyConfig{Type: TypeValue, Values: []string{"DE", "fr"}}
			c.Datasets[1].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypeGroups, Groups: []GroupConfig{{"paid", []string{"Pro", "business"}}}}
		}, []string{
			`datasets[0].dimensions[0].hierarchy.values[0]: "Instagram" could never match: values are compared after normalization, which makes it "instagram"; write "instagram"`,
			`datasets[0].dimensions[0].hierarchy.values[2]: " x" could never match: values are compared after normalization, which makes it "x"; write "x"`,
			`datasets[0].dimensions[0].hierarchy.values[3]: "tiktok" is listed twice; remove one`,
			`datasets[0].dimensions[0].hierarchy.values[4]: must be a value other than "" and "*" (got "*")`,
			`datasets[0].dimensions[0].hierarchy.values[5]: must be a value other than "" and "*" (got "")`,
			`datasets[0].dimensions[2].hierarchy.values[1]: ".leaf" has an empty part; a prefix hierarchy's values read parent.leaf or parent`,
			`datasets[0].dimensions[2].hierarchy.values[2]: "beauty." has an empty part; a prefix hierarchy's values read parent.leaf or parent`,
			`datasets[0].dimensions[3].hierarchy.values[1]: "fr" could never match: values are compared after normalization, which makes it "FR"; write "FR"`,
			`datasets[0].ladder[4]: raises "region" to level 2, above its hierarchy's top (level 1, "*"); remove the step`,
			`datasets[1].dimensions[2].hierarchy.groups[0].values[0]: "Pro" could never match: values are compared after normalization, which makes it "pro"; write "pro"`,
		}},
		{"a value the decoder never produces for a field it closes itself", func(c *Config) {
			c.Datasets[0].Dimensions[0].Hierarchy.Values = []string{"instagram", "facebook", "other"}
			c.Datasets[1].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypeGroups, Groups: []GroupConfig{{"paid", []string{"pro", "gold"}}}}
		}, []string{
			`datasets[0].dimensions[0].hierarchy.values[1]: "facebook" can never occur: platform is read as one of instagram, tiktok, x, linkedin, youtube, anything else as other; remove it`,
			`datasets[1].dimensions[2].hierarchy.groups[0].values[1]: "gold" can never occur: plan_tier is read as one of free, pro, business, enterprise, anything else as other; remove it`,
		}},
		{"a string dimension's value set may be a prefix hierarchy's list or groups", func(c *Config) {
			c.Datasets[0].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypePrefix, Values: []string{"beauty.skincare", "beauty", "food.cpg"}}
			c.Datasets[1].Dimensions[2].Hierarchy = HierarchyConfig{Type: TypeGroups, Groups: []GroupConfig{{"paid", []string{"pro", "business"}}}}
		}, nil},
		{"buckets out of order and a label in no group", func(c *Config) {
			h := &c.Datasets[0].Dimensions[4].Hierarchy
			h.Buckets[2].From = 5000
			h.Groups[1].Values = []string{"mid", "macro", "giga"}
		}, []string{
			"datasets[0].dimensions[4].hierarchy.buckets[2].from: must be above the previous bucket's from 10000 (got 5000); list buckets in ascending order",
			`datasets[0].dimensions[4].hierarchy.groups[1].values[2]: "giga" is not a bucket label; use one of nano, micro, mid, macro, mega`,
			`datasets[0].dimensions[4].hierarchy.groups: bucket "mega" is in no group; add it to one`,
		}},
		{"a table without a file or a default", func(c *Config) {
			c.Datasets[0].Dimensions[3].Hierarchy = HierarchyConfig{Type: TypeTable, Table: "../etc/passwd"}
		}, []string{
			`datasets[0].dimensions[3].hierarchy.table: must be a relative, slash-separated path inside the data directory (got "../etc/passwd")`,
			"datasets[0].dimensions[3].hierarchy.default: must name the table's row for values it does not know, e.g. ZZ",
		}},
		{"too many dimensions", func(c *Config) {
			d := &c.Datasets[1]
			for i := range 4 {
				d.Dimensions = append(d.Dimensions, DimensionConfig{Name: fmt.Sprintf("extra%d", i), Field: "action",
					Hierarchy: HierarchyConfig{Type: TypeStar}})
			}
		}, []string{"datasets[1].dimensions: declares 9 dimensions; at most 8 are allowed"}},
		{"a ladder naming an unknown dimension", func(c *Config) { c.Datasets[1].Ladder[2] = "device" },
			[]string{`datasets[1].ladder[2]: "device" is not a dimension of this dataset; use one of feature, action, plan_tier, team_size, device_type`}},
		{"a measure whose name is taken or reserved", func(c *Config) {
			c.Datasets[1].Measures[1].Name = "action"
			c.Datasets[1].Measures[2].Name = "dt"
		}, []string{
			`datasets[1].measures[1].name: "action" is already the column datasets[1].dimensions[1]; column names must be unique`,
			`datasets[1].measures[2].name: "dt" is reserved for a fixed column or partition key; choose another name`,
		}},
		{"a measure named like a dimension's level column", func(c *Config) { c.Datasets[1].Measures[1].Name = "action_level" },
			[]string{`datasets[1].measures[1].name: "action_level" is already the column datasets[1].dimensions[1] (its level column); column names must be unique`}},
		{"order statistics and unknown kinds", func(c *Config) {
			c.Datasets[1].Measures[3].Kind = "median"
			c.Datasets[1].Measures[1].Kind = "avg"
		}, []string{
			`datasets[1].measures[1].kind: must be one of count, sum, distinct, ratio (got "avg")`,
			`datasets[1].measures[3].kind: "median" is an order statistic, and order statistics are never published (contract §7): each one is some entity's value; use count, sum, distinct or ratio`,
		}},
		{"measure references that do not resolve", func(c *Config) {
			ms := c.Datasets[0].Measures
			ms[1].Entity = "campaign"
			ms[7].Fields = []string{"likes", "likes", "duration_ms", "caption"}
			ms[12].Numerator = "engagement_rate"
			ms[12].Denominator = "views"
			ms[14].Scale = -1
		}, []string{
			`datasets[0].measures[1].entity: "campaign" is not an entity of this dataset; declare it under entities`,
			`datasets[0].measures[7].fields[1]: "likes" is listed twice; it would be counted twice`,
			`datasets[0].measures[7].fields[2]: "duration_ms" is a field of usage.interaction only, and this dataset takes campaign.metrics`,
			`datasets[0].measures[7].fields[3]: "caption" is not a counter; use one of clicks, comments, conversions, duration_ms, impressions, likes, reach, revenue_cents, saves, shares, spend_cents, video_views`,
			`datasets[0].measures[12].numerator: "engagement_rate" is a ratio; a ratio is computed from count, sum or distinct measures`,
			`datasets[0].measures[12].denominator: "views" is not a measure of this dataset`,
			"datasets[0].measures[14].scale: must not be negative (got -1); 0 means 1",
		}},
		{"keys that do not apply to a measure's kind", func(c *Config) {
			m := &c.Datasets[1].Measures[0]
			m.Fields, m.Entity, m.Numerator, m.Scale = []string{"duration_ms"}, "users", "events", 2
		}, []string{
			"datasets[1].measures[0].fields: applies to sum measures only; remove it",
			"datasets[1].measures[0].entity: applies to distinct measures only; remove it",
			"datasets[1].measures[0].numerator: applies to ratio measures only; remove it",
			"datasets[1].measures[0].scale: applies to ratio measures only; remove it",
		}},
		{"an unprotected workspace entity", func(c *Config) { c.Datasets[1].Entities[0].Protected = false },
			[]string{"datasets[1].entities[0].protected: the workspace entity is always protected (k-anonymity over workspaces); set protected: true"}},
		{"no workspace entity and a non-identifier entity", func(c *Config) {
			c.Datasets[1].Entities = []EntityConfig{{Name: "users", Field: "user_id", Protected: true}, {Name: "plans", Field: "plan_tier"}}
		}, []string{
			`datasets[1].measures[1].entity: "workspaces" is not an entity of this dataset; declare it under entities`,
			`datasets[1].entities[1].field: "plan_tier" is not an identifier field; use one of campaign_id, creator_id, user_id, workspace_id`,
			"datasets[1].entities: must declare the workspace entity, e.g. {name: workspaces, field: workspace_id, protected: true}",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			if diff := cmp.Diff(tt.want, errLines(c.Validate())); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildReadsTablesFromTheDataDirectory(t *testing.T) {
	withTable := func(name, def string) Config {
		c := DefaultConfig()
		c.Datasets[0].Dimensions[3].Hierarchy = HierarchyConfig{Type: TypeTable, Table: name, Default: def}
		return c
	}
	dir := fstest.MapFS{
		"markets.csv": {Data: []byte("DE;dach;emea;*\nAT;dach;emea;*\nUS;us;amer;*\n??;??;??;*\n")},
		"region.csv":  {Data: []byte("DE;EUROPE;*\nZZ;ZZ;*\n")},
		"broken.csv":  {Data: []byte("DE;EU;*\nFR;EU\nZZ;ZZ;*\n")},
		"flat.csv":    {Data: []byte("DE;*\nZZ;*\n")},
	}
	tests := []struct {
		name    string
		cfg     Config
		dir     fstest.MapFS
		check   string // a value to generalize at levels 0..2
		want    []string
		wantErr []string
	}{
		{"a table of the data directory is read", withTable("markets.csv", "??"), dir, "AT", []string{"AT", "dach", "emea"}, nil},
		{"a table in the data directory shadows the built-in one", withTable("region.csv", "ZZ"), dir, "DE", []string{"DE", "EUROPE", "*"}, nil},
		{"the built-in region table is used when the directory has none", withTable("region.csv", "ZZ"), fstest.MapFS{}, "FR", []string{"FR", "europe", "*"}, nil},
		{"a missing table is reported with its path", withTable("nope.csv", "ZZ"), dir, "", nil, []string{
			"datasets[0].dimensions[3].hierarchy.table: nope.csv: no such file in the data directory, and no built-in table of that name (built-in: region.csv, industries.csv, features.csv)"}},
		{"a broken table is reported with its line", withTable("broken.csv", "ZZ"), dir, "", nil, []string{
			"datasets[0].dimensions[3].hierarchy.table: broken.csv:2: row has 2 columns, want 3 like the first row: every value needs the same number of levels"}},
		{"a ladder raising a table above its top is reported", withTable("flat.csv", "ZZ"), dir, "", nil, []string{
			`datasets[0].ladder[4]: raises "region" to level 2, above its hierarchy's top (level 1, "*"); remove the step`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := Build(tt.cfg, tt.dir)
			if diff := cmp.Diff(tt.wantErr, errLines(err)); diff != "" {
				t.Fatalf("Build errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			h := specs[0].Dimensions[3].Hierarchy
			got := []string{h.Generalize(tt.check, 0), h.Generalize(tt.check, 1), h.Generalize(tt.check, 2)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("region generalizes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildRejectsAnInvalidConfig(t *testing.T) {
	c := DefaultConfig()
	c.Datasets[0].Privacy.K = 1
	if _, err := Build(c, nil); err == nil || !strings.Contains(err.Error(), "datasets[0].privacy.k: must be >= 3 (got 1)") {
		t.Errorf("Build with k = 1: err = %v, want the validation message", err)
	}
}
