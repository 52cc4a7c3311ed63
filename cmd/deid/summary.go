package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mya/deid/pipeline"
)

// printSummary prints what a run did: records read, their dispositions,
// rows published per generalization level, cells suppressed, and where the
// outputs are.
func printSummary(w io.Writer, s *pipeline.Summary, outDir string) {
	var read, contributed, dead int64
	excluded := map[string]int64{}
	for _, p := range s.Partitions {
		read += p.Read
		contributed += p.Contributed
		dead += p.DeadLetters
		for r, n := range p.Excluded {
			excluded[r] += n
		}
	}
	var totalExcl int64
	for _, n := range excluded {
		totalExcl += n
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "records read\t%d\t\n", read)
	fmt.Fprintf(tw, "  contributed\t%d\t\n", contributed)
	fmt.Fprintf(tw, "  excluded\t%d\t\n", totalExcl)
	for _, r := range pipeline.RecordReasons() {
		if n := excluded[r.String()]; n > 0 {
			fmt.Fprintf(tw, "    %s\t%d\t\n", r, n)
		}
	}
	fmt.Fprintf(tw, "  dead letters\t%d\t\n", dead)
	tw.Flush()
	if read != contributed+totalExcl+dead {
		fmt.Fprintf(w, "ACCOUNTING MISMATCH: %d read != %d contributed + %d excluded + %d dead letters\n",
			read, contributed, totalExcl, dead)
	}

	type dsTotals struct {
		windows                                  int
		contributed, published, withdrawn, suppr int64
		cellsSuppressed                          int64
		rowsByLevel, eventsByLevel               map[int]int64
		withdrawnByReason                        map[string]int64
	}
	byDS := map[string]*dsTotals{}
	for _, ws := range s.Windows {
		t := byDS[ws.Dataset]
		if t == nil {
			t = &dsTotals{rowsByLevel: map[int]int64{}, eventsByLevel: map[int]int64{}, withdrawnByReason: map[string]int64{}}
			byDS[ws.Dataset] = t
		}
		t.windows++
		t.contributed += ws.Acct.Contributed
		t.published += ws.Acct.Published
		t.withdrawn += ws.Acct.Withdrawn
		t.suppr += ws.Acct.Suppressed
		t.cellsSuppressed += ws.Acct.CellsSuppressed
		for l, n := range ws.Acct.RowsByLevel {
			t.rowsByLevel[l] += n
		}
		for l, n := range ws.Acct.EventsByLevel {
			t.eventsByLevel[l] += n
		}
		for r, n := range ws.Acct.WithdrawnByReason {
			t.withdrawnByReason[r] += n
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byDS)) {
		t := byDS[name]
		fmt.Fprintf(w, "\ndataset %s: %d windows; events contributed %d = published %d + withdrawn %d + suppressed %d\n",
			name, t.windows, t.contributed, t.published, t.withdrawn, t.suppr)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  level\trows\tevents\t\n")
		for _, l := range slices.Sorted(maps.Keys(t.rowsByLevel)) {
			fmt.Fprintf(tw, "  %d\t%d\t%d\t\n", l, t.rowsByLevel[l], t.eventsByLevel[l])
		}
		fmt.Fprintf(tw, "  cells suppressed\t%d\t\t\n", t.cellsSuppressed)
		tw.Flush()
		for _, r := range slices.Sorted(maps.Keys(t.withdrawnByReason)) {
			fmt.Fprintf(w, "  withdrawn at publication (%s): %d events\n", r, t.withdrawnByReason[r])
		}
	}
	out := strings.TrimSuffix(outDir, "/")
	fmt.Fprintf(w, "\noutputs:\n  datasets      %s/datasets/<dataset>/dt=YYYY-MM-DD/ (Parquet + _manifest.json)\n", out)
	fmt.Fprintf(w, "  exclusion log %s/exclusions/\n  dead letters  %s/dead-letters/\n", out, out)
	fmt.Fprintf(w, "  accounting    %s/accounting/<dataset>/dt=YYYY-MM-DD/accounting.json (compliance only)\n", out)
}
