package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// labels are the contenders' names in the table, in table order.
var labels = []struct{ key, label string }{
	{Deid, "deid (file mode)"},
	{DeidAlt, "deid, other build"},
	{DeidS3, "deid (file mode, s3:// out)"},
	{DuckDB, "DuckDB (same SQL semantics)"},
	{DuckDBLenient, "DuckDB (typed read)"},
	{DecodeLimitC, "decode limit"},
	{DeidKafka, "deid (Kafka mode)"},
	{DeidKafkaAlt, "deid (Kafka), other build"},
	{KafkaConsumer, "bare kafka-go consumer"},
	{DeidJob1, "deid job, 1 instance"},
	{DeidJobN, "deid job, several instances"},
}

// Print writes res as a table: medians with [min–max].
func Print(w io.Writer, res *Result) {
	in := res.Input
	fmt.Fprintf(w, "\ndeid bench: %s events in %d partitions (%.0f B/event, %.0f MB), %d workspaces over %d days, seed %d\n",
		group(in.Lines), in.Partitions, in.MeanEventBytes(), float64(in.Bytes)/1e6, in.Workspaces, in.Days, in.Seed)
	fmt.Fprintf(w, "%d runs each, alternating; median [min–max]; %d CPUs; load %.1f → %.1f\n\n", res.Reps,
		res.Host.CPUs, res.Host.LoadStart, res.Host.LoadEnd)
	fmt.Fprintf(w, "%-29s %-20s %-20s %-21s %-21s %-9s %s\n", "", "events/s (M)", "events/CPU-s (M)", "MB/s",
		"peak RSS (MiB)", "CPU util", "contention")
	for _, l := range labels {
		f, ok := res.Contenders[l.key]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%-29s %-20s %-20s %-21s %-21s %-9s %s\n", l.label, mspread(f.EventsPerSec, 1e6),
			mspread(f.EventsPerCPUSec, 1e6), mspread(f.MBPerSec, 1), mspread(f.PeakRSSMB, 1),
			fmt.Sprintf("%.2f", f.CPUUtilization.Median), pct(f.Contention.Median))
	}
	if !res.Kafka.Measured {
		fmt.Fprintf(w, "%-29s %s\n", label(DeidKafka), res.Kafka.Note)
	}
	fmt.Fprintln(w)
	keys := make([]string, 0, len(res.Ratios))
	for k := range res.Ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := res.Ratios[k]
		var target string
		if k == KafkaRatio {
			target = fmt.Sprintf(" (target ≥ %.2f)", KafkaTarget)
		}
		fmt.Fprintf(w, "%-42s %s throughput, %s per CPU-second%s\n", ratioName(k)+":", xspread(r.Wall), xspread(r.CPU), target)
	}
	fmt.Fprintln(w, "\ntargets (this run's medians; information, never a failure):")
	for _, t := range res.Targets {
		mark := "no "
		if t.Met {
			mark = "yes"
		}
		fmt.Fprintf(w, "  %s  %-58s %.2f (want ≥ %.2f)\n", mark, t.Name, t.Got, t.Want)
	}
	if len(res.Equivalence) > 0 {
		printEquivalence(w, res.Equivalence)
	}
	printJob(w, res.Job)
	if m := res.Memory; m != nil {
		fmt.Fprintf(w, "\nmemory: %s events → %.0f MiB peak; %s events (×%d, same workspaces and days) → %.0f MiB (×%.2f), %.1f s wall, %.1f s CPU\n",
			group(m.BaseEvents), m.BaseRSSMB, group(m.BigEvents), m.Scale, m.BigRSSMB, m.BigRSSMB/m.BaseRSSMB,
			m.BigWall, m.BigCPU)
		if r := m.Repeated; r != nil {
			fmt.Fprintf(w, "        %s events (×%d, each event repeated: same cells, contributions, entities) → %.0f MiB (×%.2f), %.1f s wall, %.1f s CPU\n",
				group(r.Events), m.Scale, r.RSSMB, r.RSSMB/m.BaseRSSMB, r.Wall, r.CPU)
		}
	}
}

func printEquivalence(w io.Writer, raw json.RawMessage) {
	var eq struct {
		Datasets map[string]struct {
			Deid      int64 `json:"deid_level0_rows"`
			Duck      int64 `json:"duckdb_cells"`
			Equal     int64 `json:"equal"`
			Differ    int64 `json:"measures_differ"`
			DeidOnly  int64 `json:"deid_only"`
			DuckOnly  int64 `json:"duckdb_only"`
			Dominance int64 `json:"duckdb_only_failing_dominance_or_p"`
		} `json:"datasets"`
		Unexplained int64 `json:"unexplained"`
	}
	if err := json.Unmarshal(raw, &eq); err != nil {
		fmt.Fprintf(w, "\nequivalence: unreadable check: %v\n", err)
		return
	}
	fmt.Fprintln(w, "\nequivalence (deid's level-0 rows against DuckDB's cells with ≥ k workspaces and ≥ k creators/users):")
	names := make([]string, 0, len(eq.Datasets))
	for n := range eq.Datasets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := eq.Datasets[n]
		fmt.Fprintf(w, "  %-17s deid %d level-0 rows, %d equal to DuckDB's (%d differ, %d deid only); DuckDB %d cells, %d more, of which %d fail dominance or p%%\n",
			n, d.Deid, d.Equal, d.Differ, d.DeidOnly, d.Duck, d.DuckOnly, d.Dominance)
	}
	verdict := "every difference explained"
	if eq.Unexplained != 0 {
		verdict = fmt.Sprintf("%d UNEXPLAINED differences (see the JSON)", eq.Unexplained)
	}
	fmt.Fprintf(w, "  %s\n", verdict)
}

// ratioName names a ratio of Result.Ratios in the table.
func ratioName(key string) string {
	switch key {
	case DeidAlt + "_vs_deid":
		return "other build / deid"
	case KafkaRatio:
		return "deid (Kafka mode) / bare consumer"
	case DeidKafka + "_vs_deid":
		return "deid (Kafka mode) / deid (file mode)"
	case DeidKafkaAlt + "_vs_" + DeidKafka:
		return "other build / deid, Kafka mode"
	case DeidS3 + "_vs_deid":
		return "deid (s3:// out) / deid (directory)"
	case DeidJobN + "_vs_" + DeidJob1:
		return "job: several instances / one"
	case DeidJob1 + "_vs_" + DeidKafka:
		return "job: one instance / deid (Kafka mode)"
	}
	return "deid / " + label(strings.TrimPrefix(key, "deid_vs_"))
}

func label(key string) string {
	for _, l := range labels {
		if l.key == key {
			return l.label
		}
	}
	return key
}

// mspread formats a spread divided by unit: "1.23 [1.10–1.30]".
func mspread(s Spread, unit float64) string {
	f := "%.2f [%.2f–%.2f]"
	if s.Median/unit >= 100 {
		f = "%.0f [%.0f–%.0f]"
	}
	return fmt.Sprintf(f, s.Median/unit, s.Min/unit, s.Max/unit)
}

func xspread(s Spread) string {
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", s.Median, s.Min, s.Max)
}

// group writes n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// printJob prints what the job runs measured beyond the table.
func printJob(w io.Writer, j JobRun) {
	if !j.Measured {
		fmt.Fprintf(w, "\njob: %s\n", j.Note)
		return
	}
	fmt.Fprintf(w, "\njob: %d instances on %d partitions (session timeout %.0fs, lease TTL %.0fs)\n", j.Instances, j.Partitions,
		j.SessionTimeout, j.LeaseTTL)
	if len(j.InstanceRSSMB) > 0 {
		var parts []string
		for _, r := range j.InstanceRSSMB {
			parts = append(parts, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(w, "  peak RSS per instance (MiB; the highest is the publisher's): %s\n", strings.Join(parts, ", "))
	}
	if b := j.Blobs; b != nil {
		fmt.Fprintf(w, "  partial blobs: %d for %d dataset windows, %.1f MB; %.0f KB per window, largest blob %.0f KB\n",
			b.Count, b.Windows, float64(b.Bytes)/1e6, b.PerWindow/1e3, float64(b.MaxBlob)/1e3)
	}
	if t := j.Takeover; t != nil {
		fmt.Fprintf(w, "  takeover after kill -9: %.1fs until the survivors held every partition; %d partitions restored in %.2fs in all (run %.1fs)\n",
			t.Seconds, t.Restores, t.RestoreSeconds, t.Wall)
	}
}
