package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
)

// Meta says what the page is about beyond the report itself.
type Meta struct {
	// Title heads the page; empty means "deid output report".
	Title string
	// Generated is when the page was made (shown, never read from the
	// clock here, so that output is deterministic).
	Generated time.Time
}

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"num":      num,
	"pct":      pct,
	"excluded": func(a pipeline.PartitionAccounting) int64 { return sum(a.Excluded) },
}).Parse(pageTemplate))

// Write renders the page for r to w.
func Write(w io.Writer, r *verify.Report, meta Meta) error {
	p := build(r, meta)
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// page is the template's data.
type page struct {
	Title, Out, Generated, Versions string
	OK                              bool
	Verdict, VerdictCounts          string
	Cards                           []card
	ReasonCols                      []reasonCol
	Periods                         []periodRow
	Total                           periodRow
	Undated                         *periodRow
	Datasets                        []datasetBlock
	ExclusionChart                  template.HTML
	Partitions                      []pipeline.PartitionAccounting
	PartitionTotal                  pipeline.PartitionAccounting
	Sections                        []section
	Log                             string
	// Heads are the output's chain heads, for compliance to archive.
	Heads []verify.Head
}

type card struct {
	Label, Value, Note string
	Tone               string
}

type reasonCol struct {
	Name, Label, Color string
}

type periodRow struct {
	Label                   string
	Read, Contributed, Dead int64
	Excluded                []int64
	ExcludedTotal           int64
}

type datasetBlock struct {
	Name   string
	Levels []int
	Rows   []windowRow
	Chart  template.HTML
	Legend []legendItem
	Total  windowRow
	// Loss is the information-loss score, "" when there is none; Dims
	// its share per dimension with the events at each level.
	Loss     string
	Strategy string
	DimLevel []int
	Dims     []dimRow
}

// dimRow is one dimension's information loss and share of events by level.
type dimRow struct {
	Name, Loss string
	Shares     []string
}

type windowRow struct {
	Label                                     string
	Contributed, Published, Withdrawn, Suppr  int64
	CellsSuppressed, RowsTotal                int64
	RowsByLevel                               []int64
	K                                         int
	WithdrawnReasons, SuppressedReasons, Note string
}

type legendItem struct{ Label, Color string }

type section struct {
	Name   string
	Checks []check
}

type check struct {
	Mark, Class, Found string
	Problems           []string
	More               int
}

// Reason colours: consent in blues and purples, content in reds, minors
// in oranges, mechanics in greys, publish-time in teal and olive.
var reasonStyle = map[string]struct{ label, color string }{
	"late_event":                     {"late", "#8d8d8d"},
	"duplicate":                      {"duplicate", "#c4c4c4"},
	"message_content":                {"message", "#c0392b"},
	"unsupported_event_type":         {"unsupported type", "#f1948a"},
	"workspace_deleted":              {"deleted workspace", "#6c3483"},
	"opted_out":                      {"opted out", "#1f618d"},
	"consent_unknown":                {"consent unknown", "#85c1e9"},
	"minor_under_13":                 {"under 13", "#d35400"},
	"minor_without_guardian_consent": {"13–17, no guardian consent", "#f5b041"},
	"opted_out_before_publish":       {"opted out before publication", "#17a589"},
	"deleted_before_publish":         {"deleted before publication", "#76d7c4"},
	"suppressed_frequency":           {"frequency (k)", "#b7950b"},
	"suppressed_dominance":           {"dominance", "#f7dc6f"},
}

// levelColors run from dark (level 0, finest) to light (coarsest).
var levelColors = []string{"#0b4f6c", "#13678a", "#1d7f95", "#2a979b", "#40ae9b", "#63c397", "#8fd58e", "#bfe38a", "#e8ee8f", "#f6f5c4"}

const (
	colorWithdrawn  = "#a6acaf"
	colorSuppressed = "#e74c3c"
)

func levelColor(l int) string { return levelColors[min(l, len(levelColors)-1)] }

func build(r *verify.Report, meta Meta) *page {
	s := &r.Summary
	p := &page{Title: meta.Title, Out: r.Out, OK: r.OK(), Verdict: r.Verdict()}
	if _, counts, ok := strings.Cut(p.Verdict, ": "); ok {
		p.VerdictCounts = strings.TrimSuffix(counts, ".")
	}
	if p.Title == "" {
		p.Title = "deid output report"
	}
	if !meta.Generated.IsZero() {
		p.Generated = meta.Generated.UTC().Format("2006-01-02 15:04 UTC")
	}
	p.Versions = versions(s)

	// Per partition, and their total: what was read.
	var tot pipeline.PartitionAccounting
	tot.Excluded = map[string]int64{}
	for _, a := range s.Partitions {
		p.Partitions = append(p.Partitions, a)
		tot.Read += a.Read
		tot.Contributed += a.Contributed
		tot.DeadLetters += a.DeadLetters
		for k, n := range a.Excluded {
			tot.Excluded[k] += n
		}
	}
	p.PartitionTotal = tot
	var published, withdrawn, suppressed, rows, cells int64
	for _, w := range s.Windows {
		published += w.Accounting.Published
		withdrawn += w.Accounting.Withdrawn
		suppressed += w.Accounting.Suppressed
		cells += w.Accounting.CellsSuppressed
		rows += w.Rows
	}
	excluded := sum(tot.Excluded)
	p.Cards = []card{
		{Label: "records read", Value: num(tot.Read), Note: fmt.Sprintf("%d partitions", len(s.Partitions))},
		{Label: "contributed", Value: num(tot.Contributed), Note: pct(tot.Contributed, tot.Read) + " of records", Tone: "good"},
		{Label: "excluded", Value: num(excluded), Note: pct(excluded, tot.Read) + " of records", Tone: "warn"},
		{Label: "dead letters", Value: num(tot.DeadLetters), Note: pct(tot.DeadLetters, tot.Read) + " malformed"},
		{Label: "rows published", Value: num(rows), Note: fmt.Sprintf("%d windows", len(s.Windows))},
		{Label: "events published", Value: num(published), Note: pct(published, tot.Contributed) + " of contributed", Tone: "good"},
		{Label: "events suppressed", Value: num(suppressed), Note: fmt.Sprintf("in %d cells; %s withdrawn", cells, num(withdrawn))},
	}

	// Periods: records by window across datasets.
	reasons := presentReasons(s)
	for _, name := range reasons {
		st := reasonStyle[name]
		if st.label == "" {
			st.label, st.color = name, "#999"
		}
		p.ReasonCols = append(p.ReasonCols, reasonCol{Name: name, Label: st.label, Color: st.color})
	}
	contributedIn := map[time.Time]int64{}
	for _, w := range s.Windows {
		contributedIn[w.Start] += w.Accounting.Contributed
	}
	p.Total.Label = "all windows"
	p.Total.Excluded = make([]int64, len(reasons))
	for _, per := range s.Periods {
		row := periodRow{Label: windowText(per.Start, per.End), Contributed: contributedIn[per.Start], Dead: per.DeadLetters}
		for i, name := range reasons {
			n := per.Excluded[name]
			row.Excluded = append(row.Excluded, n)
			row.ExcludedTotal += n
			p.Total.Excluded[i] += n
		}
		row.Read = row.Contributed + row.ExcludedTotal + row.Dead
		p.Periods = append(p.Periods, row)
		p.Total.Contributed += row.Contributed
		p.Total.ExcludedTotal += row.ExcludedTotal
		p.Total.Dead += row.Dead
		p.Total.Read += row.Read
	}
	if n := sum(s.Undated); n > 0 {
		u := periodRow{Label: "no published window", Dead: s.Undated["dead_letter"]}
		for i, name := range reasons {
			c := s.Undated[name]
			u.Excluded = append(u.Excluded, c)
			u.ExcludedTotal += c
			p.Total.Excluded[i] += c
		}
		u.Read = u.ExcludedTotal + u.Dead
		p.Undated = &u
		p.Total.ExcludedTotal += u.ExcludedTotal
		p.Total.Dead += u.Dead
		p.Total.Read += u.Read
	}
	p.ExclusionChart = exclusionChart(s, reasons)

	// Datasets.
	var names []string
	for _, w := range s.Windows {
		if !slices.Contains(names, w.Dataset) {
			names = append(names, w.Dataset)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		p.Datasets = append(p.Datasets, datasetOf(s, name))
	}

	// The verify report.
	for _, sec := range r.Sections() {
		out := section{Name: sec.Name}
		for _, c := range sec.Checks {
			ch := check{Mark: c.Status.Mark(), Class: c.Status.String(), Found: c.Found}
			for i, pr := range c.Problems {
				if i == 50 {
					ch.More = len(c.Problems) - i
					break
				}
				ch.Problems = append(ch.Problems, pr)
			}
			out.Checks = append(out.Checks, ch)
		}
		p.Sections = append(p.Sections, out)
	}
	p.Heads = s.Heads
	p.Log = fmt.Sprintf("%d chains, %d segments, %s entries", s.Chains, s.Segments, num(s.Entries))
	if s.Signed > 0 {
		p.Log += fmt.Sprintf(", %d signatures", s.Signed)
	}
	return p
}

func datasetOf(s *verify.Summary, name string) datasetBlock {
	b := datasetBlock{Name: name, Total: windowRow{Label: "all windows"}}
	maxLevel := 0
	var ws []verify.WindowSummary
	for _, w := range s.Windows {
		if w.Dataset != name {
			continue
		}
		ws = append(ws, w)
		for l := range w.Accounting.RowsByLevel {
			maxLevel = max(maxLevel, l)
		}
	}
	for l := 0; l <= maxLevel; l++ {
		b.Levels = append(b.Levels, l)
	}
	b.Total.RowsByLevel = make([]int64, len(b.Levels))
	for _, w := range ws {
		a := w.Accounting
		row := windowRow{Label: windowText(w.Start, w.End), Contributed: a.Contributed, Published: a.Published, Withdrawn: a.Withdrawn,
			Suppr: a.Suppressed, CellsSuppressed: a.CellsSuppressed, RowsTotal: w.Rows, K: w.K,
			WithdrawnReasons: reasonsText(a.WithdrawnByReason), SuppressedReasons: reasonsText(a.SuppressedByReason)}
		for _, l := range b.Levels {
			row.RowsByLevel = append(row.RowsByLevel, a.RowsByLevel[l])
			b.Total.RowsByLevel[l] += a.RowsByLevel[l]
		}
		b.Rows = append(b.Rows, row)
		b.Total.Contributed += a.Contributed
		b.Total.Published += a.Published
		b.Total.Withdrawn += a.Withdrawn
		b.Total.Suppr += a.Suppressed
		b.Total.CellsSuppressed += a.CellsSuppressed
		b.Total.RowsTotal += w.Rows
	}
	for _, u := range s.Utility {
		if u.Dataset != name {
			continue
		}
		b.Loss = fmt.Sprintf("%.3f", u.Loss)
		total := u.Published + u.Suppressed
		for _, d := range u.Dims {
			row := dimRow{Name: d.Name, Loss: fmt.Sprintf("%.3f", d.Loss)}
			for l, n := range d.EventsByLevel {
				for len(b.DimLevel) <= l {
					b.DimLevel = append(b.DimLevel, len(b.DimLevel))
				}
				row.Shares = append(row.Shares, pct(n, total))
			}
			b.Dims = append(b.Dims, row)
		}
		for i := range b.Dims {
			for len(b.Dims[i].Shares) < len(b.DimLevel) {
				b.Dims[i].Shares = append(b.Dims[i].Shares, "")
			}
		}
	}
	for _, w := range ws {
		if w.Generalization != "" {
			b.Strategy = w.Generalization
		}
	}
	b.Chart = levelChart(ws, b.Levels)
	for _, l := range b.Levels {
		b.Legend = append(b.Legend, legendItem{Label: fmt.Sprintf("level %d", l), Color: levelColor(l)})
	}
	b.Legend = append(b.Legend, legendItem{Label: "withdrawn", Color: colorWithdrawn}, legendItem{Label: "suppressed", Color: colorSuppressed})
	return b
}

// presentReasons lists the record-level reasons that occur, in gate order.
func presentReasons(s *verify.Summary) []string {
	seen := map[string]bool{}
	for _, per := range s.Periods {
		for r, n := range per.Excluded {
			if n > 0 {
				seen[r] = true
			}
		}
	}
	for r, n := range s.Undated {
		if n > 0 && r != "dead_letter" {
			seen[r] = true
		}
	}
	for _, a := range s.Partitions {
		for r, n := range a.Excluded {
			if n > 0 {
				seen[r] = true
			}
		}
	}
	var out []string
	for _, r := range pipeline.RecordReasons() {
		if seen[r.String()] {
			out = append(out, r.String())
			delete(seen, r.String())
		}
	}
	rest := make([]string, 0, len(seen))
	for r := range seen {
		rest = append(rest, r)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func versions(s *verify.Summary) string {
	var pipes, pols []string
	for _, w := range s.Windows {
		if !slices.Contains(pipes, w.PipelineVersion) {
			pipes = append(pipes, w.PipelineVersion)
		}
		if !slices.Contains(pols, w.PolicyVersion) {
			pols = append(pols, w.PolicyVersion)
		}
	}
	if len(pipes) == 0 {
		return ""
	}
	return "deid " + strings.Join(pipes, ", ") + " · policy " + strings.Join(pols, ", ")
}

func windowText(start, end time.Time) string {
	if end.Sub(start) == 24*time.Hour && start.Hour() == 0 && start.Minute() == 0 {
		return start.UTC().Format("2006-01-02")
	}
	return start.UTC().Format("2006-01-02 15:04") + "–" + end.UTC().Format("15:04")
}

func reasonsText(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] > 0 {
			label := reasonStyle[k].label
			if label == "" {
				label = k
			}
			parts = append(parts, fmt.Sprintf("%s %s", label, num(m[k])))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// num formats an integer with thin-space thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pct formats part/whole as a percentage.
func pct(part, whole int64) string {
	if whole == 0 {
		return "–"
	}
	f := 100 * float64(part) / float64(whole)
	switch {
	case f == 0:
		return "0%"
	case f < 0.1:
		return "<0.1%"
	case f < 10:
		return fmt.Sprintf("%.1f%%", f)
	case f > 99 && f < 100:
		// Never round a part up to the whole.
		return fmt.Sprintf("%.1f%%", math.Min(f, 99.9))
	}
	return fmt.Sprintf("%.0f%%", f)
}

// FormatCount formats a count as the page shows it, with narrow spaces
// between thousands: "200 000".
func FormatCount(n int64) string { return num(n) }
