package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
)

func TestSpreadGivesTheMedianAndTheRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want Spread
	}{
		{"no values give zeros", nil, Spread{}},
		{"one value is its own median", []float64{3}, Spread{3, 3, 3}},
		{"an odd count takes the middle value", []float64{5, 1, 3}, Spread{3, 1, 5}},
		{"an even count takes the mean of the two middle values", []float64{4, 1, 2, 10}, Spread{3, 1, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, spread(tc.xs)); diff != "" {
				t.Errorf("spread(%v) (-want +got):\n%s", tc.xs, diff)
			}
		})
	}
}

func TestSummarizeDividesByWallAndByCPUTime(t *testing.T) {
	samples := []Sample{
		{Wall: 2 * time.Second, User: 3 * time.Second, Sys: time.Second, MaxRSS: 100 << 20, Contention: 0.1},
		{Wall: 4 * time.Second, User: 2 * time.Second, MaxRSS: 200 << 20, Contention: -1},
	}
	f := summarize(samples, 1_000_000, 500_000_000)
	if f.Runs != 2 {
		t.Errorf("Runs = %d, want 2", f.Runs)
	}
	if got, want := f.EventsPerSec, (Spread{375_000, 250_000, 500_000}); got != want {
		t.Errorf("EventsPerSec = %+v, want %+v", got, want)
	}
	if got, want := f.EventsPerCPUSec, (Spread{375_000, 250_000, 500_000}); got != want {
		t.Errorf("EventsPerCPUSec = %+v, want %+v", got, want)
	}
	if got, want := f.MBPerSec, (Spread{187.5, 125, 250}); got != want {
		t.Errorf("MBPerSec = %+v, want %+v", got, want)
	}
	if got, want := f.PeakRSSMB, (Spread{150, 100, 200}); got != want {
		t.Errorf("PeakRSSMB = %+v, want %+v", got, want)
	}
	if got, want := f.Contention, (Spread{0.1, 0.1, 0.1}); got != want {
		t.Errorf("Contention = %+v (unknown values left out), want %+v", got, want)
	}
}

func TestRatiosPairRunsInOrder(t *testing.T) {
	deid := []Sample{{Wall: time.Second, User: time.Second}, {Wall: 2 * time.Second, User: 4 * time.Second}}
	duck := []Sample{{Wall: 3 * time.Second, User: 2 * time.Second}, {Wall: 2 * time.Second, User: 4 * time.Second}}
	r := ratios(deid, duck)
	if want := (Spread{2, 1, 3}); r.Wall != want {
		t.Errorf("Wall = %+v, want %+v (3/1 and 2/2)", r.Wall, want)
	}
	if want := (Spread{1.5, 1, 2}); r.CPU != want {
		t.Errorf("CPU = %+v, want %+v (2/1 and 4/4)", r.CPU, want)
	}
}

func smallGen() gen.Config {
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions, cfg.Workspaces = 6000, 2, 40
	return cfg
}

func TestPrepareGeneratesOnceAndReusesTheCache(t *testing.T) {
	cache := t.TempDir()
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, f) }
	in, err := Prepare(cache, smallGen(), logf)
	if err != nil {
		t.Fatal(err)
	}
	if in.Lines != 6000 || len(in.Events) != 2 || in.Bytes == 0 {
		t.Fatalf("input = %+v, want 6000 lines in 2 files", in)
	}
	fi, err := os.Stat(in.Events[0])
	if err != nil {
		t.Fatal(err)
	}
	again, err := Prepare(cache, smallGen(), logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 1 {
		t.Errorf("logged %q, want one generation", logs)
	}
	if fi2, _ := os.Stat(again.Events[0]); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("the second Prepare rewrote the cached input")
	}

	// A stamp from another generator (or a partial input) regenerates.
	stamp := filepath.Join(in.Dir, stampName)
	b, _ := os.ReadFile(stamp)
	var st Input
	json.Unmarshal(b, &st)
	st.Fingerprint = "0000"
	b, _ = json.Marshal(st)
	os.WriteFile(stamp, b, 0o644)
	if _, err := Prepare(cache, smallGen(), logf); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 || !strings.Contains(logs[1], "another generator") {
		t.Errorf("logged %q, want a regeneration after a fingerprint change", logs)
	}
}

func TestDecodeLimitReadsEveryLine(t *testing.T) {
	in, err := Prepare(t.TempDir(), smallGen(), func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeLimit(context.Background(), in.Events)
	if err != nil {
		t.Fatal(err)
	}
	if c.Records != in.Lines {
		t.Errorf("Records = %d, want every line: %d", c.Records, in.Lines)
	}
	if c.Bytes != in.Bytes {
		t.Errorf("Bytes = %d, want the files' %d", c.Bytes, in.Bytes)
	}
	if c.Malformed == 0 || c.Malformed > c.Records/20 {
		t.Errorf("Malformed = %d of %d, want the generator's few malformed lines", c.Malformed, c.Records)
	}
}

func TestMeasureReadsTheChildsUsage(t *testing.T) {
	s, err := Measure(context.Background(), "", nil, "/bin/sh", "-c", "echo hello")
	if err != nil {
		t.Fatal(err)
	}
	if s.Wall <= 0 || s.MaxRSS <= 0 || s.Stdout != "hello" {
		t.Errorf("sample = %+v, want a wall time, a peak RSS and the output", s)
	}
	_, err = Measure(context.Background(), "", nil, "/bin/sh", "-c", "echo broken >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("Measure of a failing child = %v, want an error with its stderr", err)
	}
}

func TestPrintShowsEveryContenderAndWhyKafkaModeIsLeftOut(t *testing.T) {
	f := summarize([]Sample{{Wall: time.Second, User: time.Second, MaxRSS: 1 << 20}}, 1000, 1000)
	res := &Result{Input: &Input{Lines: 1000, Bytes: 400_000, Partitions: 2}, Reps: 1,
		Contenders: map[string]Figures{Deid: f, DuckDB: f, DecodeLimitC: f},
		Ratios:     map[string]Ratio{"deid_vs_" + DuckDB: {Wall: Spread{2, 2, 2}}},
		Kafka:      KafkaRun{Note: "kafka: left out (--skip-kafka)"}}
	res.Targets = targets(res)
	var out bytes.Buffer
	Print(&out, res)
	for _, want := range []string{"deid (file mode)", "DuckDB (same SQL semantics)", "decode limit",
		"kafka: left out (--skip-kafka)", "deid / DuckDB (same SQL semantics):", "2.00×", "(want ≥ 1.50)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
