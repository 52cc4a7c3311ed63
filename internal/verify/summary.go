package verify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mya/deid/internal/infoloss"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
)

// Summary holds the figures of an output, for the HTML report.
type Summary struct {
	// WindowSize is the size of the windows.
	WindowSize time.Duration
	// Windows are the published dataset windows, by start then dataset.
	Windows []WindowSummary
	// Partitions are each partition's accounting at its newest commit.
	Partitions []pipeline.PartitionAccounting
	// Periods are the windows by start, with the records excluded and
	// dead-lettered whose event time falls in them.
	Periods []Period
	// Undated counts excluded and dead-lettered records without a usable
	// event time, or outside every published window, by reason (dead
	// letters under "dead_letter").
	Undated map[string]int64
	// Chains, Segments and Entries size the exclusion log.
	Chains, Segments int
	Entries          int64
	// Signed counts the signature files beside manifests and segments.
	Signed int
	// Heads are the newest link of every chain: each dataset's newest
	// manifest and each exclusion chain's newest segment, for compliance
	// to archive outside the output.
	Heads []Head
	// Utility is each declared dataset's information-loss score over every
	// published window (package infoloss): events by level per dimension,
	// suppressed events as full loss. Datasets in name order.
	Utility []infoloss.Score
}

// WindowSummary is one published dataset window.
type WindowSummary struct {
	Dataset    string
	Start, End time.Time
	Rows       int64
	Accounting pipeline.WindowAccounting
	// PolicyVersion and PipelineVersion are the manifest's.
	PolicyVersion, PipelineVersion string
	// K is the k the window was published with.
	K int
	// Generalization is the strategy the manifest records ("" before it
	// was recorded: the ladder).
	Generalization string
}

// Period is one window of time across datasets.
type Period struct {
	Start, End time.Time
	// Excluded counts the record-level exclusion entries whose event time
	// falls in the period, by reason; withdrawals and suppressions are in
	// each dataset's WindowSummary.
	Excluded map[string]int64
	// DeadLetters counts the dead letters whose event time could be read
	// and falls in the period.
	DeadLetters int64
}

// summarize fills the report's Summary.
func (v *verifier) summarize() {
	s := &v.r.Summary
	s.WindowSize = v.out.WindowSize()
	s.Undated = map[string]int64{}
	for _, w := range v.windows() {
		m := w.Manifest
		s.Windows = append(s.Windows, WindowSummary{Dataset: m.Dataset, Start: m.Window.Start.UTC(), End: m.Window.End.UTC(),
			Rows: m.Rows, Accounting: *w.Acct(), PolicyVersion: m.PolicyVersion, PipelineVersion: m.PipelineVersion, K: m.Privacy.K,
			Generalization: m.Privacy.Generalization})
	}
	slices.SortStableFunc(s.Windows, func(a, b WindowSummary) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Dataset, b.Dataset)
	})
	periods := map[int64]*Period{}
	for _, w := range s.Windows {
		k := w.Start.UnixMicro()
		if periods[k] == nil {
			periods[k] = &Period{Start: w.Start, End: w.End, Excluded: map[string]int64{}}
		}
	}
	size := s.WindowSize.Microseconds()
	periodOf := func(t int64) *Period {
		if size <= 0 || t == 0 {
			return nil
		}
		start := t - ((t%size)+size)%size
		return periods[start]
	}
	for _, c := range v.out.Chains {
		s.Chains++
		if c.Report != nil {
			s.Segments += len(c.Report.Segments)
			s.Entries += c.Report.Entries
		}
		if c.Name == PublishChain || c.Name == SettingsChain {
			continue // no input records: publish-time entries, skipped settings records
		}
		if f := c.Final(); f != nil {
			s.Partitions = append(s.Partitions, *f)
		}
		c.Entries(func(_ *Segment, e *pipeline.Exclusion) {
			if e.Cell != nil {
				return
			}
			if p := periodOf(e.OccurredAt); p != nil {
				p.Excluded[e.Reason.String()]++
			} else {
				s.Undated[e.Reason.String()]++
			}
		})
	}
	for name, letters := range v.out.DeadLetters {
		var lines []Line
		if v.input != nil {
			if p := v.input.Partition(name); p != nil {
				lines = p.Lines
			}
		}
		for _, l := range letters {
			// A dead letter keeps its record's bytes only under
			// keep_payload; the input, when given, has them all.
			t := eventTime(l.Value)
			if t == 0 && l.Offset >= 1 && l.Offset <= int64(len(lines)) {
				t = lines[l.Offset-1].OccurredAt
			}
			if p := periodOf(t); p != nil {
				p.DeadLetters++
			} else {
				s.Undated["dead_letter"]++
			}
		}
	}
	for _, k := range sortedKeys(periods) {
		s.Periods = append(s.Periods, *periods[k])
	}
	s.Utility = v.utility()
}

// utility scores each dataset's published rows: every row's values and
// <dimension>_level columns with its events, and the window's suppressed
// events from its accounting record.
func (v *verifier) utility() []infoloss.Score {
	tallies := map[string]*infoloss.Tally{}
	for _, w := range v.windows() {
		m := w.Manifest
		spec := v.specs[m.Dataset]
		if spec == nil {
			continue
		}
		t := tallies[m.Dataset]
		if t == nil {
			t = infoloss.New(spec)
			tallies[m.Dataset] = t
		}
		t.AddSuppressed(w.Acct().Suppressed)
		events := ""
		for _, ms := range spec.Measures {
			if ms.Kind == pipeline.MeasureCount {
				events = ms.Name
				break
			}
		}
		for _, r := range v.rows[w.Path] {
			vals := make([]string, len(spec.Dimensions))
			levels := make([]int, len(spec.Dimensions))
			for d, dim := range spec.Dimensions {
				vals[d], _ = r[dim.Name].(string)
				l, _ := r[parquet.LevelColumn(dim.Name)].(int32)
				levels[d] = int(l)
			}
			n, _ := r[events].(int64)
			_ = t.AddRow(vals, levels, n) // a row that does not fit is a failed check of checkRows
		}
	}
	var out []infoloss.Score
	for _, name := range sortedKeys(tallies) {
		out = append(out, tallies[name].Score())
	}
	return out
}

// eventTime reads occurred_at from a malformed record's bytes when it can,
// 0 otherwise.
func eventTime(b []byte) int64 {
	var env struct {
		OccurredAt string `json:"occurred_at"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if dec.Decode(&env) != nil {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, env.OccurredAt)
	if err != nil {
		return 0
	}
	return t.UnixMicro()
}
