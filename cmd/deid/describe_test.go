package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/decode"
)

// TestDatasetsDocIsCurrent holds docs/datasets.md to what deid describe
// prints for the default datasets.
func TestDatasetsDocIsCurrent(t *testing.T) {
	want := deid(t, "describe")
	got, err := os.ReadFile("../../docs/datasets.md")
	if err != nil {
		t.Fatalf("%v: run `go run ./cmd/deid describe > docs/datasets.md`", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("docs/datasets.md is out of date with the dataset declarations: run `go run ./cmd/deid describe > docs/datasets.md` and commit it (-describe +file):\n%s", diff)
	}
}

// TestDescribeDocumentsEveryColumn checks that every column of every
// default dataset has a row in the dictionary, with a meaning and a unit.
func TestDescribeDocumentsEveryColumn(t *testing.T) {
	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	md := describe(specs, true)
	for _, s := range specs {
		for _, name := range append([]string{"window_start", "window_end", "generalization_level"}, columnNames(s)...) {
			found := false
			for _, line := range strings.Split(md, "\n") {
				if strings.HasPrefix(line, "| `"+name+"` |") {
					found = true
					if cells := strings.Split(line, " | "); len(cells) < 5 || strings.TrimSpace(cells[3]) == "" {
						t.Errorf("%s.%s: no meaning in %q", s.Name, name, line)
					}
				}
			}
			if !found {
				t.Errorf("%s: column %s is not in the dictionary", s.Name, name)
			}
		}
	}
}

// TestDescribeExplainsTrainingOnMixedLevels: the dictionary tells the ML
// team what a row's levels mean and how to train on rows of mixed levels.
func TestDescribeExplainsTrainingOnMixedLevels(t *testing.T) {
	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	md := describe(specs, true)
	_, section, ok := strings.Cut(md, "## How to use the rows for training\n")
	if !ok {
		t.Fatal("the dictionary has no section on how to use the rows for training")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{
		"**A row at level L**",                              // what a level-L row is
		"**`<dimension>_level`**",                           // each value's granularity
		"**Rows never overlap**",                            // summing over a window
		"window's published total",                          //
		"**Level-0 rows alone are a biased sample.**",       // why
		"roll finer rows up to the coarsest level you need", // one granularity
		"privacy-safe",                                      // post-processing
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the training section does not say %q:\n%s", want, section)
		}
	}
}

func columnNames(s *pipeline.DatasetSpec) []string {
	var names []string
	for _, d := range s.Dimensions {
		names = append(names, d.Name, d.Name+pipeline.LevelSuffix)
	}
	for _, m := range s.Measures {
		names = append(names, m.Name)
	}
	return names
}

// TestClosedSetsMatchTheDecoder holds the dictionary's value lists to the
// decoder: each listed value passes through unchanged, and a value outside
// them reads "other".
func TestClosedSetsMatchTheDecoder(t *testing.T) {
	d, err := decode.New(decode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	read := func(field, value string) string {
		t.Helper()
		var line string
		switch field {
		case "platform", "content_type":
			line = fmt.Sprintf(`{"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1",`+
				`"payload":{"campaign_id":"c1","creator_id":"cr1","follower_count":5,%q:%q}}`, field, value)
		default:
			line = fmt.Sprintf(`{"event_id":"e1","event_type":"usage.interaction","occurred_at":"2026-11-01T00:00:00Z","workspace_id":"w1","user_id":"u1",`+
				`"payload":{"team_size":3,%q:%q}}`, field, value)
		}
		var ev pipeline.Event
		if err := d.Decode([]byte(line), &ev); err != nil {
			t.Fatalf("%s=%q: %v", field, value, err)
		}
		return map[string]string{"platform": ev.Campaign.Platform, "content_type": ev.Campaign.ContentType,
			"action": ev.Usage.Action, "plan_tier": ev.Usage.PlanTier, "device_type": ev.Usage.DeviceType}[field]
	}
	for field, values := range closedSets {
		for _, v := range values {
			if got := read(field, v); got != v {
				t.Errorf("%s: the dictionary lists %q, the decoder reads it as %q", field, v, got)
			}
		}
		if got := read(field, "surely-not-a-"+field); got != "other" {
			t.Errorf("%s: an unknown value reads %q, the dictionary says other", field, got)
		}
	}
}
