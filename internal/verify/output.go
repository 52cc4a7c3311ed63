package verify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
)

// Output is everything deid wrote under one output directory, read back
// with the sinks' readers. Load never fails on damaged content: what cannot
// be read is recorded beside what can, for the checks to report.
type Output struct {
	// Dir is the output directory.
	Dir string
	// Manifests are the committed windows, sorted by path.
	Manifests []*Window
	// Uncommitted are dataset window directories without a manifest.
	Uncommitted []string
	// Chains are the exclusion-log chains, in directory order.
	Chains []*Chain
	// DeadLetters are the dead letters by partition name
	// ("events-00.ndjson[0]"); nil when there is no dead-letter directory
	// (in streaming mode they go to a topic).
	DeadLetters map[string][]deadletter.Line
	// DeadLetterErrs are the dead-letter files that could not be read.
	DeadLetterErrs []string
}

// Window is one committed dataset window.
type Window struct {
	// Path is the manifest's path.
	Path string
	// Manifest is nil when Err is set.
	Manifest *parquet.Manifest
	Err      error
	// Record is the window's accounting record (<out>/accounting/...),
	// nil when RecordErr is set; RecordSHA256 is the hex SHA-256 of its
	// bytes, "" when they cannot be read.
	Record       *parquet.AccountingRecord
	RecordSHA256 string
	RecordErr    error
	// RecordPath is where the record belongs.
	RecordPath string
}

// Acct returns the window's accounting from its record, or zero counts
// when the record cannot be read.
func (w *Window) Acct() *pipeline.WindowAccounting {
	if w.Record == nil {
		return &pipeline.WindowAccounting{}
	}
	return &w.Record.Accounting
}

// Partitions returns the partitions' accounting from the window's record,
// or none when it cannot be read.
func (w *Window) Partitions() []pipeline.PartitionAccounting {
	if w.Record == nil {
		return nil
	}
	return w.Record.Partitions
}

// Dir returns the window's directory.
func (w *Window) Dir() string { return filepath.Dir(w.Path) }

// Window returns the manifest's window in microseconds.
func (w *Window) Window() pipeline.Window {
	return pipeline.Window{Start: w.Manifest.Window.Start.UnixMicro(), End: w.Manifest.Window.End.UnixMicro()}
}

// Chain is one exclusion-log chain.
type Chain struct {
	// Dir is the chain's directory; Name its name ("events-00.ndjson[0]",
	// "publish").
	Dir, Name string
	// Report is VerifyChain's; Err joins the problems it found.
	Report *exclusions.ChainReport
	Err    error
	// Segments are the readable segments in sequence order, with their
	// entries.
	Segments []Segment
}

// Segment is one readable segment and its entries.
type Segment struct {
	Meta    exclusions.SegmentMeta
	Entries []pipeline.Exclusion
}

// Final returns the accounting of the chain's newest segment that records
// one, or nil.
func (c *Chain) Final() *pipeline.PartitionAccounting {
	for i := len(c.Segments) - 1; i >= 0; i-- {
		if a := c.Segments[i].Meta.Accounting; a != nil {
			return a
		}
	}
	return nil
}

// Entries calls f for every entry of the chain, in order.
func (c *Chain) Entries(f func(seg *Segment, e *pipeline.Exclusion)) {
	for i := range c.Segments {
		s := &c.Segments[i]
		for j := range s.Entries {
			f(s, &s.Entries[j])
		}
	}
}

// PublishChain is the name of the chain of publish-time entries.
const PublishChain = "publish"

// SettingsChain is the name of the chain of settings records skipped as
// unattributable (consent.unattributable: skip): not input records, so no
// partition's.
const SettingsChain = "settings"

// Load reads an output directory. It fails only when dir is not a
// directory or holds none of deid's outputs.
func Load(dir string) (*Output, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	o := &Output{Dir: dir}
	found := false
	for _, sub := range []string{"datasets", "exclusions", "dead-letters"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err == nil {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s holds no datasets/, exclusions/ or dead-letters/: it is not a deid output directory", dir)
	}
	if err := o.loadDatasets(); err != nil {
		return nil, err
	}
	if err := o.loadChains(); err != nil {
		return nil, err
	}
	return o, o.loadDeadLetters()
}

func (o *Output) loadDatasets() error {
	paths, err := parquet.ListManifests(o.Dir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		m, err := parquet.ReadManifest(p)
		w := &Window{Path: p, Manifest: m, Err: err}
		o.Manifests = append(o.Manifests, w)
		if m == nil {
			continue
		}
		dir, derr := parquet.AccountingDir(o.Dir, m.Dataset, w.Window())
		if derr != nil {
			w.RecordErr = derr // checkFiles reports the window itself
			continue
		}
		w.RecordPath = filepath.Join(dir, parquet.AccountingName)
		w.Record, w.RecordSHA256, w.RecordErr = parquet.ReadAccounting(w.RecordPath)
	}
	// Directories holding data files but no manifest.
	root := filepath.Join(o.Dir, "datasets")
	committed := map[string]bool{}
	for _, p := range paths {
		committed[filepath.Dir(p)] = true
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") && !committed[filepath.Dir(path)] {
			if !slices.Contains(o.Uncommitted, filepath.Dir(path)) {
				o.Uncommitted = append(o.Uncommitted, filepath.Dir(path))
			}
		}
		return nil
	})
	return err
}

func (o *Output) loadChains() error {
	root := filepath.Join(o.Dir, "exclusions")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			o.Chains = append(o.Chains, &Chain{Dir: filepath.Join(root, e.Name()), Name: e.Name(),
				Err: fmt.Errorf("exclusions: %s: unexpected file beside the chain directories", e.Name())})
			continue
		}
		dir := filepath.Join(root, e.Name())
		r, verr := exclusions.VerifyChain(dir)
		c := &Chain{Dir: dir, Name: r.Name, Report: r, Err: verr}
		if c.Name == "" {
			c.Name = e.Name()
		}
		for _, meta := range r.Segments {
			entries, _, err := exclusions.ReadSegment(meta.Path)
			if err != nil {
				continue // VerifyChain reported it
			}
			c.Segments = append(c.Segments, Segment{Meta: meta, Entries: entries})
		}
		o.Chains = append(o.Chains, c)
	}
	return nil
}

func (o *Output) loadDeadLetters() error {
	dir := filepath.Join(o.Dir, "dead-letters")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	o.DeadLetters = map[string][]deadletter.Line{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".ndjson") {
			continue
		}
		lines, err := deadletter.ReadAll(filepath.Join(dir, e.Name()))
		if err != nil {
			o.DeadLetterErrs = append(o.DeadLetterErrs, err.Error())
			continue
		}
		for _, l := range lines {
			p := pipeline.PartitionID{Source: l.Source, Partition: l.Partition}.String()
			o.DeadLetters[p] = append(o.DeadLetters[p], l)
		}
	}
	return nil
}

// Chain returns the named chain, or nil.
func (o *Output) Chain(name string) *Chain {
	for _, c := range o.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// WindowSize returns the size of the windows, from the manifests (0 when
// there is none).
func (o *Output) WindowSize() time.Duration {
	for _, w := range o.Manifests {
		if w.Manifest != nil {
			return w.Manifest.Window.End.Sub(w.Manifest.Window.Start)
		}
	}
	return 0
}

// rel returns path relative to the output directory, slash-separated.
func (o *Output) rel(path string) string {
	r, err := filepath.Rel(o.Dir, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}
