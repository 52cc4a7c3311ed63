// Package infoloss measures how much detail a dataset's published rows
// lost to generalization and suppression: the information-loss score of
// contract §7 and the share of events at each level of each dimension.
//
// The score is the normalized certainty penalty (NCP) that ARX and
// sdcMicro use for microdata, applied to aggregate rows and weighted by
// the events each row holds. A value that covers c of a dimension's n
// level-0 values (leaves) costs (c − 1)/(n − 1): 0 for a level-0 value,
// 1 for "*". A row's events pay that for each dimension; suppressed
// events pay 1 for every dimension, since nothing of them is published.
// A dimension's loss is the event-weighted mean over all contributed
// events (published + suppressed), and a dataset's score is the mean of
// its dimensions' losses, from 0 (everything at level 0) to 1
// (everything at "*" or suppressed). Leaves are counted in the
// hierarchy's declared level-0 domain, so a continent of 60 countries
// costs more than one of 5; a dimension with a single leaf costs nothing,
// and a hierarchy without a declared domain falls back to level/top.
//
// Withdrawn events (consent changed before publication) are not part of
// the score: no strategy could publish them.
package infoloss

import (
	"fmt"
	"strings"

	"github.com/mya/deid/pipeline"
)

// Dim is one dimension's hierarchy as the score sees it: how many leaves
// each value at each level covers.
type Dim struct {
	Name string
	// Levels counts the hierarchy's levels, level 0 and the top "*"
	// included.
	Levels int
	// leaves[l][v] is the number of level-0 values v covers at level l;
	// nil when the hierarchy declares no level-0 domain.
	leaves []map[string]int
	total  int
}

// NewDim reads a hierarchy's level-0 domain and counts the leaves under
// every value at every level.
func NewDim(name string, h pipeline.Hierarchy) Dim {
	d := Dim{Name: name, Levels: max(h.Levels(), 1)}
	dom := h.Domain(0)
	if len(dom) == 0 {
		return d
	}
	d.total = len(dom)
	d.leaves = make([]map[string]int, d.Levels)
	for l := range d.leaves {
		d.leaves[l] = make(map[string]int)
		for _, x := range dom {
			d.leaves[l][h.Generalize(x, l)]++
		}
	}
	return d
}

// NCP returns the normalized certainty penalty of value at level: 0 at
// level 0, 1 at the top.
func (d Dim) NCP(level int, value string) float64 {
	top := d.Levels - 1
	switch {
	case level <= 0 || top <= 0 || d.leaves != nil && d.total <= 1:
		return 0
	case level >= top:
		return 1
	}
	if d.leaves != nil && d.total > 1 {
		if c, ok := d.leaves[level][value]; ok {
			return float64(c-1) / float64(d.total-1)
		}
	}
	return float64(level) / float64(top)
}

// Tally adds up one dataset's rows and suppressed events. The zero value
// is not ready: use New.
type Tally struct {
	Dataset string
	dims    []Dim
	// Published and Suppressed count events.
	Published, Suppressed int64
	// Rows counts published rows.
	Rows int64
	// byLevel[d][l] counts published events whose dimension d is at level l.
	byLevel [][]int64
	// loss[d] sums events × NCP over published rows.
	loss []float64
}

// New returns an empty tally for spec's dimensions.
func New(spec *pipeline.DatasetSpec) *Tally {
	t := &Tally{Dataset: spec.Name}
	for _, dim := range spec.Dimensions {
		var d Dim
		if dim.Hierarchy != nil {
			d = NewDim(dim.Name, dim.Hierarchy)
		} else {
			d = Dim{Name: dim.Name, Levels: 1}
		}
		t.dims = append(t.dims, d)
		t.byLevel = append(t.byLevel, make([]int64, d.Levels))
	}
	t.loss = make([]float64, len(t.dims))
	return t
}

// AddRow counts a published row: its dimension values, each one's level,
// and its events. It returns an error when the row does not fit the
// dataset (and counts nothing of it).
func (t *Tally) AddRow(values []string, levels []int, events int64) error {
	if len(values) != len(t.dims) || len(levels) != len(t.dims) {
		return fmt.Errorf("infoloss: %s: a row with %d values and %d levels, want %d", t.Dataset, len(values), len(levels), len(t.dims))
	}
	for i, l := range levels {
		if l < 0 || l >= t.dims[i].Levels {
			return fmt.Errorf("infoloss: %s: %s at level %d, outside 0–%d", t.Dataset, t.dims[i].Name, l, t.dims[i].Levels-1)
		}
	}
	for i, l := range levels {
		t.byLevel[i][l] += events
		t.loss[i] += float64(events) * t.dims[i].NCP(l, values[i])
	}
	t.Published += events
	t.Rows++
	return nil
}

// AddSuppressed counts suppressed events: full loss on every dimension.
func (t *Tally) AddSuppressed(events int64) { t.Suppressed += events }

// Score is a tally's result.
type Score struct {
	Dataset               string
	Published, Suppressed int64
	Rows                  int64
	// Loss is the mean of the dimensions' losses, 0 to 1.
	Loss float64
	Dims []DimScore
}

// DimScore is one dimension's share of the score.
type DimScore struct {
	Name string
	// Loss is the event-weighted NCP, suppressed events counting 1.
	Loss float64
	// EventsByLevel counts published events by the dimension's level.
	EventsByLevel []int64
}

// Score computes the score of what was tallied.
func (t *Tally) Score() Score {
	s := Score{Dataset: t.Dataset, Published: t.Published, Suppressed: t.Suppressed, Rows: t.Rows}
	total := float64(t.Published + t.Suppressed)
	for i, d := range t.dims {
		ds := DimScore{Name: d.Name, EventsByLevel: append([]int64(nil), t.byLevel[i]...)}
		if total > 0 {
			ds.Loss = (t.loss[i] + float64(t.Suppressed)) / total
		}
		s.Dims = append(s.Dims, ds)
		s.Loss += ds.Loss
	}
	if len(s.Dims) > 0 {
		s.Loss /= float64(len(s.Dims))
	}
	return s
}

// Text renders the score on one line: "campaign_metrics: loss 0.412
// (platform 0.10, …); events by level platform 90%/10%, …".
func (s Score) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: information loss %.3f (", s.Dataset, s.Loss)
	for i, d := range s.Dims {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.3f", d.Name, d.Loss)
	}
	b.WriteString("); published events by level:")
	for i, d := range s.Dims {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %s", d.Name, Shares(d.EventsByLevel, s.Published+s.Suppressed))
	}
	if s.Suppressed > 0 {
		fmt.Fprintf(&b, "; suppressed %s", percent(s.Suppressed, s.Published+s.Suppressed))
	}
	return b.String()
}

// Shares renders counts as percentages of total, level 0 first: "62/30/8%".
func Shares(counts []int64, total int64) string {
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = strings.TrimSuffix(percent(n, total), "%")
	}
	return strings.Join(parts, "/") + "%"
}

func percent(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}
