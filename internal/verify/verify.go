package verify

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sources/file"
	"github.com/mya/deid/transforms/aggregate"
)

// Options says what Run checks beyond the output itself.
type Options struct {
	// Input is the input of a file-mode run (its Paths as `deid run
	// --input` takes them). With Settings it enables the input checks.
	Input file.Config
	// Settings is the settings NDJSON file of the run.
	Settings string
	// UnknownWorkspaces is the run's consent.unknown_workspaces: "exclude"
	// (the default when empty) or "include".
	UnknownWorkspaces string
	// PublicKey, when set, makes Run check every signature with it.
	PublicKey ed25519.PublicKey
	// Datasets are the dataset declarations the output was written under;
	// nil means deid's defaults.
	Datasets []*pipeline.DatasetSpec
	// Anchors, when set, is the anchor log the run appended to: every
	// commit it anchors must be in the output, with the hash anchored.
	Anchors string
}

// HasInput tells whether the input checks are asked for.
func (o *Options) HasInput() bool { return len(o.Input.Paths) > 0 }

// Run verifies the output directory out and returns what it found. The
// error is for an output it cannot read at all (no such directory, not a
// deid output, a bad option); every problem of the content is a failed
// check in the report. ctx cancels between checks.
func Run(ctx context.Context, out string, opts Options) (*Report, error) {
	if opts.HasInput() != (opts.Settings != "") {
		return nil, fmt.Errorf("the input checks need both the input and the settings file (--input and --settings)")
	}
	specs := opts.Datasets
	if specs == nil {
		var err error
		if specs, err = aggregate.Build(aggregate.DefaultConfig(), nil); err != nil {
			return nil, err
		}
	}
	o, err := Load(out)
	if err != nil {
		return nil, err
	}
	v := &verifier{out: o, opts: opts, specs: map[string]*pipeline.DatasetSpec{}, r: &Report{Out: out}}
	for _, s := range specs {
		v.specs[s.Name] = s
	}
	steps := []func() error{v.checkFiles, v.checkManifestChains, v.checkChains, v.checkAccounting, v.checkRows, v.checkInput,
		v.checkDeadLetters, v.checkSignatures, v.checkAnchors}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	v.summarize()
	return v.r, nil
}

// verifier holds one run of the checks.
type verifier struct {
	out   *Output
	opts  Options
	specs map[string]*pipeline.DatasetSpec
	r     *Report
	// rows are each readable window's published rows, by manifest path.
	rows map[string][]map[string]any
	// input is the independent reading of the input, when given.
	input *Input
}

// windows returns the readable manifests.
func (v *verifier) windows() []*Window {
	var ws []*Window
	for _, w := range v.out.Manifests {
		if w.Manifest != nil {
			ws = append(ws, w)
		}
	}
	return ws
}

// partitionChains returns the chains of input partitions (all but
// "publish" and "settings").
func (v *verifier) partitionChains() []*Chain {
	var cs []*Chain
	for _, c := range v.out.Chains {
		if c.Name != PublishChain && c.Name != SettingsChain && c.Report != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// countsBy renders counts as "a 3, b 2", sorted by key.
func countsBy(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// reasonCounts renders counts by reason in gate order, then the others.
func reasonCounts(m map[string]int64) string {
	var parts []string
	seen := map[string]bool{}
	for _, r := range allReasons() {
		if n := m[r]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
		seen[r] = true
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !seen[k] && m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// allReasons lists every reason's name in gate order.
func allReasons() []string {
	var out []string
	for r := pipeline.ReasonLateEvent; ; r++ {
		s := r.String()
		if s == "unknown" {
			return out
		}
		out = append(out, s)
	}
}

// sum adds up the counts of m.
func sum[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

// windowLabel names a manifest's window: "campaign_metrics 2026-11-01".
func windowLabel(w *Window) string {
	m := w.Manifest
	s := m.Window.Start.UTC()
	if m.Window.End.Sub(m.Window.Start) == 24*time.Hour {
		return m.Dataset + " " + s.Format("2006-01-02")
	}
	return m.Dataset + " " + s.Format("2006-01-02T15:04Z")
}

// sortedKeys returns a map's keys, sorted.
func sortedKeys[K ~string | ~int | ~int64, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func joinComma(s []string) string { return strings.Join(s, ", ") }

func sortedStrings(s []string) []string { slices.Sort(s); return s }

func timeOf(us int64) time.Time { return time.UnixMicro(us).UTC() }
