package aggregate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

func mustBuckets(t testing.TB, bs []Bucket, gs []Group) *Buckets {
	t.Helper()
	b, err := NewBuckets(bs, gs)
	if err != nil {
		t.Fatalf("NewBuckets: %v", err)
	}
	return b
}

func followerTiers(t testing.TB) *Buckets {
	return mustBuckets(t, []Bucket{{"nano", 0}, {"micro", 10_000}, {"mid", 100_000}, {"macro", 500_000}, {"mega", 1_000_000}},
		[]Group{{"small", []string{"nano", "micro"}}, {"large", []string{"mid", "macro", "mega"}}})
}

func teamSizes(t testing.TB) *Buckets {
	return mustBuckets(t, []Bucket{{"1", 1}, {"2-5", 2}, {"6-20", 6}, {"21-100", 21}, {"101+", 101}},
		[]Group{{"small", []string{"1", "2-5"}}, {"large", []string{"6-20", "21-100", "101+"}}})
}

func builtinTable(t testing.TB, name, def string) *Table {
	t.Helper()
	f, err := builtinTables.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tb, err := ParseTable(name, f, def)
	if err != nil {
		t.Fatalf("ParseTable: %v", err)
	}
	return tb
}

func regionTable(t testing.TB) *Table   { return builtinTable(t, "region.csv", "ZZ") }
func industryTable(t testing.TB) *Table { return builtinTable(t, "industries.csv", Other) }
func featureTable(t testing.TB) *Table  { return builtinTable(t, "features.csv", Other) }
func platformValues(t testing.TB) *Values {
	return must[*Values](t)(NewValues([]string{"instagram", "tiktok", "x", "linkedin", "youtube"}))
}

// must returns a constructor's hierarchy, failing the test on its error.
func must[H any](t testing.TB) func(H, error) H {
	return func(h H, err error) H {
		t.Helper()
		if err != nil {
			t.Fatalf("constructor: %v", err)
		}
		return h
	}
}

func taxonomy(t testing.TB) *Prefix {
	return must[*Prefix](t)(NewPrefix([]string{"beauty.skincare", "beauty.makeup", "food", "a.b.c"}))
}

// TestGeneralize lists, for a value, its generalization at every level from
// 0 to one beyond the top (which must read "*" too).
func TestGeneralize(t *testing.T) {
	plans, err := NewGroups([]Group{{"paid", []string{"pro", "business", "enterprise"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		h     pipeline.Hierarchy
		value string
		want  []string
	}{
		{"a value of the set generalizes straight to the star", platformValues(t), "instagram", []string{"instagram", "*", "*"}},
		{"a value outside the set reads other at level 0", platformValues(t), "<script>alert(1)</script>", []string{"other", "*", "*"}},
		{"other is always in a value set", platformValues(t), "other", []string{"other", "*", "*"}},
		{"a dotted value generalizes to its parent, then the star", taxonomy(t), "beauty.skincare", []string{"beauty.skincare", "beauty", "*", "*"}},
		{"a value without a dot is its own parent", taxonomy(t), "food", []string{"food", "food", "*", "*"}},
		{"only the first dot splits a value", taxonomy(t), "a.b.c", []string{"a.b.c", "a", "*", "*"}},
		{"a dotted value outside the set reads other, and so does its parent", taxonomy(t), "beauty.<script>", []string{"other", "other", "*", "*"}},
		{"a parent the set does not list alone reads other", taxonomy(t), "beauty", []string{"other", "other", "*", "*"}},
		{"the star hierarchy is the star at every level", StarHierarchy{}, "anything", []string{"*", "*"}},
		{"a grouped value generalizes to its group", plans, "pro", []string{"pro", "paid", "*", "*"}},
		{"a value no group lists reads other and goes to the default group", plans, "free", []string{"other", "other", "*", "*"}},
		{"an industry generalizes to its family", industryTable(t), "beauty.skincare", []string{"beauty.skincare", "beauty", "*", "*"}},
		{"an industry family alone is its own parent", industryTable(t), "fashion", []string{"fashion", "fashion", "*", "*"}},
		{"free text in industry reads other at every level", industryTable(t), "<script>alert(1)</script>.x", []string{"other", "other", "*", "*"}},
		{"an industry of a known family but unknown leaf reads other", industryTable(t), "beauty.nails", []string{"other", "other", "*", "*"}},
		{"a feature generalizes to its family", featureTable(t), "mya.chat", []string{"mya.chat", "mya", "*", "*"}},
		{"a feature outside the taxonomy reads other", featureTable(t), "labs.beta_canvas", []string{"other", "other", "*", "*"}},
		{"a follower label generalizes to its size group", followerTiers(t), "micro", []string{"micro", "small", "*", "*"}},
		{"a follower count is bucketed first", followerTiers(t), "250000", []string{"mid", "large", "*", "*"}},
		{"a bucket's lower bound is in the bucket", followerTiers(t), "10000", []string{"micro", "small", "*", "*"}},
		{"a count just below a bound is in the bucket below", followerTiers(t), "9999", []string{"nano", "small", "*", "*"}},
		{"the last bucket is open-ended", followerTiers(t), "9000000000", []string{"mega", "large", "*", "*"}},
		{"a value below the first bucket is counted in it", teamSizes(t), "0", []string{"1", "small", "*", "*"}},
		{"a team of five is small", teamSizes(t), "5", []string{"2-5", "small", "*", "*"}},
		{"a team of 101 is large", teamSizes(t), "101", []string{"101+", "large", "*", "*"}},
		{"a value that is neither a label nor a number has no bucket", teamSizes(t), "huge", []string{"*", "*", "*", "*"}},
		{"a country generalizes to its continent", regionTable(t), "DE", []string{"DE", "europe", "*", "*"}},
		{"Namibia's code is not mistaken for North America", regionTable(t), "NA", []string{"NA", "africa", "*", "*"}},
		{"Saudi Arabia is in Asia, not South America", regionTable(t), "SA", []string{"SA", "asia", "*", "*"}},
		{"an unknown country reads as the default row, even at level 0", regionTable(t), "XX", []string{"ZZ", "unknown", "*", "*"}},
		{"the unknown country ZZ is in the unknown continent", regionTable(t), "ZZ", []string{"ZZ", "unknown", "*", "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.h.Levels()+1, len(tt.want); got != want {
				t.Fatalf("Levels() = %d, the case lists %d levels", got-1, want-1)
			}
			var got []string
			for l := range tt.want {
				got = append(got, tt.h.Generalize(tt.value, l))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Generalize(%q, 0..%d) (-want +got):\n%s", tt.value, len(tt.want)-1, diff)
			}
		})
	}
}

func TestDomain(t *testing.T) {
	plans, err := NewGroups([]Group{{"paid", []string{"pro", "business"}}, {"trial", []string{"trial"}}}, "free")
	if err != nil {
		t.Fatal(err)
	}
	untiered := mustBuckets(t, []Bucket{{"low", 0}, {"high", 100}}, nil)
	tests := []struct {
		name  string
		h     pipeline.Hierarchy
		level int
		want  []string
	}{
		{"a value hierarchy's level 0 is its value set with other, sorted", platformValues(t), 0,
			[]string{"instagram", "linkedin", "other", "tiktok", "x", "youtube"}},
		{"a value's top is the star", platformValues(t), 1, []string{"*"}},
		{"a prefix's level 0 is its value set with other", taxonomy(t), 0, []string{"a.b.c", "beauty.makeup", "beauty.skincare", "food", "other"}},
		{"a prefix's parents are the values' parents and other", taxonomy(t), 1, []string{"a", "beauty", "food", "other"}},
		{"a prefix's top is the star", taxonomy(t), 2, []string{"*"}},
		{"the star hierarchy's only level is the star", StarHierarchy{}, 0, []string{"*"}},
		{"a groups hierarchy's level 0 is its groups' values and other", plans, 0, []string{"business", "other", "pro", "trial"}},
		{"a groups hierarchy's level 1 lists the groups and the default, sorted", plans, 1, []string{"free", "paid", "trial"}},
		{"the industry families, with other", industryTable(t), 1, []string{"automotive", "beauty", "education", "entertainment",
			"fashion", "finance", "fitness", "food", "gaming", "health", "home", "other", "parenting", "pets", "sports", "tech", "travel"}},
		{"the feature families, with other", featureTable(t), 1, []string{"analytics", "billing", "budget", "campaign", "campaigns",
			"content", "creators", "inbox", "matching", "mya", "other", "settings"}},
		{"bucket labels are closed and sorted", followerTiers(t), 0, []string{"macro", "mega", "micro", "mid", "nano"}},
		{"bucket groups are closed and sorted", followerTiers(t), 1, []string{"large", "small"}},
		{"the top of grouped buckets is the star", followerTiers(t), 2, []string{"*"}},
		{"buckets without groups go straight to the star", untiered, 1, []string{"*"}},
		{"the region table's continents are names, with unknown", regionTable(t), 1, []string{"africa", "antarctica", "asia", "europe",
			"north_america", "oceania", "south_america", "unknown"}},
		{"a level beyond the top is the star", regionTable(t), 7, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.h.Domain(tt.level)); diff != "" {
				t.Errorf("Domain(%d) (-want +got):\n%s", tt.level, diff)
			}
		})
	}
	if got := len(regionTable(t).Domain(0)); got != 251 {
		t.Errorf("region table has %d countries, want 250 and ZZ", got)
	}
	if got := len(industryTable(t).Domain(0)); got != 69 {
		t.Errorf("industry table has %d values, want 68 and other", got)
	}
	if got := len(featureTable(t).Domain(0)); got != 41 {
		t.Errorf("feature table has %d values, want 40 and other", got)
	}
}

// A continent is a name, never a code that is also a country's: with codes,
// "AS" would read as American Samoa or Asia, "NA" as Namibia or North America.
func TestNoContinentIsACountryCode(t *testing.T) {
	rt := regionTable(t)
	for _, c := range rt.Domain(1) {
		if slices.Contains(rt.Domain(0), c) {
			t.Errorf("continent %q is also a country code; name continents (e.g. north_america)", c)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		h    pipeline.Hierarchy
		want string
	}{
		{"value", platformValues(t), "value (else other) → *"},
		{"prefix", taxonomy(t), "parent.leaf (else other) → parent → *"},
		{"industries", industryTable(t), "table industries.csv: 69 values in 3 levels, unknown → other"},
		{"star", StarHierarchy{}, "*"},
		{"team sizes", teamSizes(t), "buckets 1 [1, 2) · 2-5 [2, 6) · 6-20 [6, 21) · 21-100 [21, 101) · 101+ [101, ∞) → small (1, 2-5) · large (6-20, 21-100, 101+) → *"},
		{"region", regionTable(t), "table region.csv: 251 values in 3 levels, unknown → ZZ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Describe(); got != tt.want {
				t.Errorf("Describe() = %q, want %q", got, tt.want)
			}
		})
	}
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseTable(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		def     string
		wantErr []string
	}{
		{"a well-formed table parses", "DE;EU;*\n\nZZ;ZZ;*\r\n", "ZZ", nil},
		{"a byte-order mark and spaces around values are ignored", "\ufeffDE ; EU ; *\nZZ;ZZ;*\n", "ZZ", nil},
		{"rows of different widths are reported with their line", "DE;EU;*\nFR;*\nZZ;ZZ;*\n", "ZZ",
			[]string{"t.csv:2: row has 2 columns, want 3 like the first row: every value needs the same number of levels"}},
		{"the last column must be the star", "DE;EU;*\nFR;EU;EU\nZZ;ZZ;*\n", "ZZ",
			[]string{`t.csv:2: the last column must be "*" (got "EU")`}},
		{"the star is reserved for the last column", "*;EU;*\nZZ;ZZ;*\n", "ZZ",
			[]string{`t.csv:1: column 1 is "*", which is reserved for the last column`}},
		{"an empty column is reported", "DE;;*\nZZ;ZZ;*\n", "ZZ", []string{"t.csv:1: column 2 is empty"}},
		{"a value listed twice is reported with the first line", "DE;EU;*\nZZ;ZZ;*\nDE;EU;*\n", "ZZ",
			[]string{`t.csv:3: value "DE" is listed twice (first on line 1)`}},
		{"a value with two parents is inconsistent", "a;x;p;*\nb;x;q;*\nZZ;ZZ;ZZ;*\n", "ZZ",
			[]string{`t.csv:2: level-1 value "x" generalizes to "q", but line 1 says "p": a value has one parent`}},
		{"a row without levels is rejected", "DE\n", "ZZ",
			[]string{`t.csv:1: a row needs a value and its generalizations ending in "*", separated by ';' (got "DE")`}},
		{"every problem is reported, not just the first", "DE;EU;*\nFR;EU\nIT;EU;x\n", "ZZ",
			[]string{"t.csv:2: row has 2 columns, want 3 like the first row: every value needs the same number of levels",
				`t.csv:3: the last column must be "*" (got "x")`}},
		{"an empty table is rejected", "\n\n", "ZZ", []string{`t.csv: no rows; write one row per value, e.g. "DE;EU;*"`}},
		{"the default must be a row of the table", "DE;EU;*\n", "ZZ",
			[]string{`t.csv: the default "ZZ" is not a value of the table; add a row for it, e.g. "ZZ;ZZ;*"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTable("t.csv", strings.NewReader(tt.csv), tt.def)
			if diff := cmp.Diff(tt.wantErr, errLines(err)); diff != "" {
				t.Errorf("ParseTable errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHierarchyConstructorsRejectBadDeclarations(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"buckets must ascend and have unique labels", func() error {
			_, err := NewBuckets([]Bucket{{"a", 0}, {"b", 10}, {"a", 5}}, nil)
			return err
		}(), []string{`bucket 2: label "a" is used twice`, "bucket 2: from 5 must be above the previous bucket's 10"}},
		{"every bucket must be in a group", func() error {
			_, err := NewBuckets([]Bucket{{"a", 0}, {"b", 10}}, []Group{{"g", []string{"a", "c"}}})
			return err
		}(), []string{`group "g" lists "c", which is not a bucket label`, `bucket "b" is in no group; every bucket needs one`}},
		{"a value set must list values, none empty, reserved or twice", func() error {
			_, err := NewValues(nil)
			_, err2 := NewValues([]string{"a", "", "*", "a"})
			return errors.Join(err, err2)
		}(), []string{"no values: declare the dimension's value set", `value "" is empty or reserved`,
			`value "*" is empty or reserved`, `value "a" is listed twice`}},
		{"a prefix value needs a parent and, after a dot, a leaf", func() error {
			_, err := NewPrefix([]string{".leaf", "parent.", "ok.fine"})
			return err
		}(), []string{`value ".leaf" has an empty part; write parent.leaf or parent`,
			`value "parent." has an empty part; write parent.leaf or parent`}},
		{"a value belongs to one group", func() error {
			_, err := NewGroups([]Group{{"x", []string{"a"}}, {"y", []string{"a"}}}, "")
			return err
		}(), []string{`value "a" is in groups "x" and "y"; a value belongs to one group`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errLines(tt.err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
