package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// goNames matches what a config error must never show the operator: a Go
// package-qualified type or yaml.v3's own wording.
var goNames = regexp.MustCompile(`\b(main|pipeline|file|decode|consent|parquet|aggregate|kafka|kafkasrc|kafkadlq|exclusions|time)\.[A-Z]|in type |unmarshal|!!`)

// userText matches the parts of a config error that quote the document:
// the YAML path before " (line N)", and quoted values.
var userText = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\S+ \(line \d+\)|config \S+`)

// FuzzLoadConfig fuzzes the YAML config loader (decodeConfig over the
// defaults, as loadConfig does). Seeds are every testdata/config fixture
// and the documents below. Invariants, for any bytes:
//   - decoding never panics, and neither does Validate on what it accepts;
//   - an error names YAML paths and lines, never a Go type or yaml.v3's
//     wording;
//   - an accepted document round-trips: written back as YAML and loaded
//     again it gives the same Config, which validates exactly when the
//     first one does (nothing is lost or invented on the way).
func FuzzLoadConfig(f *testing.F) {
	fixtures, _ := filepath.Glob("../../testdata/config/*.yaml")
	for _, p := range fixtures {
		// The alias fixture is left out: it costs 100,000 steps a run, so
		// its mutations would crowd out every other (TestConfigs has it).
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "~", "mode: file\n", "pipeline: {window: 1h, window: 2h}\n", "a: &x {b: 1}\nc: *x\n",
		"pipeline:\n  <<: {window: 6h}\n", "datasets: [{name: x, privacy: {k: 3}}]\n", "memory_limit: 1GiB\n---\n"} {
		f.Add([]byte(s))
	}
	events := "../../testdata/golden/campaigns/events.ndjson"
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := defaultConfig()
		err := decodeConfig("f.yaml", b, &cfg)
		if err != nil {
			// What the operator wrote (a key path, a quoted value) may be
			// anything; the rest is deid's words.
			said := userText.ReplaceAllString(err.Error(), "")
			if goNames.MatchString(said) {
				t.Fatalf("the error shows Go or yaml.v3 internals:\n%v", err)
			}
			return
		}
		out, err := yaml.Marshal(&cfg)
		if err != nil {
			t.Fatalf("an accepted config does not marshal: %v", err)
		}
		again := defaultConfig()
		if err := decodeConfig("again.yaml", out, &again); err != nil {
			t.Fatalf("an accepted config, written back, is refused: %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("an accepted config changes on a round trip (-first +again):\n%s", diff)
		}
		// Validate resolves input paths on the file system: give it one.
		cfg.Input.Paths, again.Input.Paths = []string{events}, []string{events}
		if verr := cfg.Validate(); (verr == nil) != (again.Validate() == nil) {
			t.Fatalf("the round trip changes whether the config validates: %v", verr)
		}
	})
}
