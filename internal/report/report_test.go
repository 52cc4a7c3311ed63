package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mya/deid/internal/infoloss"
	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
)

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

// testReport is a small verify report with every part the page shows.
func testReport() *verify.Report {
	acct := pipeline.WindowAccounting{Contributed: 1000, Published: 900, Withdrawn: 40, Suppressed: 60,
		WithdrawnByReason: map[string]int64{"opted_out_before_publish": 40}, SuppressedByReason: map[string]int64{"suppressed_frequency": 60},
		RowsByLevel: map[int]int64{0: 10, 2: 3}, EventsByLevel: map[int]int64{0: 700, 2: 200}, CellsSuppressed: 2}
	return &verify.Report{
		Out: "/data/out <&>",
		Checks: []verify.Check{
			{Section: verify.SectionFiles, Status: verify.Pass, Found: "2 window manifests read"},
			{Section: verify.SectionRows, Status: verify.Fail, Found: "k-anonymity is violated: 1 problem",
				Problems: []string{`campaign_metrics 2026-11-01: row 3 (<script>alert(1)</script>): workspaces = 2 < k = 10`}},
			{Section: verify.SectionSignatures, Status: verify.Note, Found: "the exclusion log is hash-chained but unsigned"},
		},
		Summary: verify.Summary{
			WindowSize: 24 * time.Hour,
			Windows: []verify.WindowSummary{
				{Dataset: "campaign_metrics", Start: day(1), End: day(2), Rows: 13, Accounting: acct, K: 10, PolicyVersion: "p1", PipelineVersion: "v1"},
				{Dataset: "campaign_metrics", Start: day(2), End: day(3), Rows: 13, Accounting: acct, K: 10, PolicyVersion: "p1", PipelineVersion: "v1"},
			},
			Partitions: []pipeline.PartitionAccounting{{Partition: "events-00.ndjson[0]", FirstOffset: 1, LastOffset: 2600, Read: 2600,
				Contributed: 2000, Excluded: map[string]int64{"opted_out": 450, "message_content": 100}, DeadLetters: 50}},
			Periods: []verify.Period{
				{Start: day(1), End: day(2), Excluded: map[string]int64{"opted_out": 200, "message_content": 50}, DeadLetters: 20},
				{Start: day(2), End: day(3), Excluded: map[string]int64{"opted_out": 250, "message_content": 50}, DeadLetters: 25},
			},
			Undated: map[string]int64{"dead_letter": 5},
			Chains:  2, Segments: 5, Entries: 552,
			Utility: []infoloss.Score{{Dataset: "campaign_metrics", Published: 1800, Suppressed: 120, Rows: 26, Loss: 0.25,
				Dims: []infoloss.DimScore{{Name: "region", Loss: 0.4, EventsByLevel: []int64{960, 600, 240}},
					{Name: "platform", Loss: 0.1, EventsByLevel: []int64{1680, 120}}}}},
		},
	}
}

func render(t *testing.T, r *verify.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r, Meta{Generated: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPageIsSelfContained checks that nothing is loaded from anywhere and
// that text from the report is escaped.
func TestPageIsSelfContained(t *testing.T) {
	page := render(t, testReport())
	for _, re := range []string{`(?i)<script`, `(?i)<link\b`, `(?i)\bsrc\s*=`, `(?i)https?://`, `(?i)@import`, `(?i)url\(`, `(?i)<img`, `(?i)@font-face`} {
		if loc := regexp.MustCompile(re).FindStringIndex(page); loc != nil {
			t.Errorf("the page is not self-contained (or a problem was not escaped): %q at byte %d", page[loc[0]:loc[1]], loc[0])
		}
	}
	if !strings.Contains(page, "/data/out &lt;&amp;&gt;") {
		t.Error("the output directory is not escaped")
	}
}

// TestPageShowsTheFigures checks the headings, the verdict and the numbers.
func TestPageShowsTheFigures(t *testing.T) {
	page := render(t, testReport())
	for _, want := range []string{
		"<h1>deid output report</h1>", "✗ NOT VERIFIED", "1 of 2 checks failed, 1 note",
		"Records by window", "Exclusions by reason, per window", "Dataset campaign_metrics", "Accounting per input partition",
		"2\u202f600", // records read
		"workspaces = 2 &lt; k = 10", "generated 2026-11-28 12:00 UTC", "deid v1 · policy p1",
		"opted out before publication 40", "frequency (k) 60", // reasons of withdrawals and suppressions
		"90%",                                                                                     // published share
		"Information loss", "Information loss 0.250", "<td>region</td><td>0.400</td><td>50%</td>", // events by level per dimension
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg"); n != 2 {
		t.Errorf("%d charts, want 2 (exclusions, one dataset)", n)
	}
}

// TestPageIsDeterministic renders twice.
func TestPageIsDeterministic(t *testing.T) {
	first, second := render(t, testReport()), render(t, testReport())
	if first != second {
		t.Error("two renderings of the same report differ")
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct {
		part, whole int64
		want        string
	}{{0, 10, "0%"}, {1, 10000, "<0.1%"}, {5, 100, "5.0%"}, {50, 100, "50%"}, {9994, 10000, "99.9%"}, {10, 10, "100%"}, {1, 0, "–"}} {
		if got := pct(c.part, c.whole); got != c.want {
			t.Errorf("pct(%d, %d) = %q, want %q", c.part, c.whole, got, c.want)
		}
	}
	if got := num(1234567); got != "1\u202f234\u202f567" {
		t.Errorf("num = %q", got)
	}
}
