package main

import (
	"bytes"
	"encoding/csv"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRollupSumsEveryPublishedEvent runs the golden campaigns case and
// rolls its campaign rows up to every dimension at "*": nothing is left
// out, and the events of the rolled-up rows are the published events; at
// level 0 everywhere only level-0 rows remain, and the rest is counted as
// left out.
func TestRollupSumsEveryPublishedEvent(t *testing.T) {
	dir := "../../testdata/golden/campaigns"
	out := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--input", filepath.Join(dir, "events.ndjson"), "--settings", filepath.Join(dir, "settings.ndjson"), "--out", out)
	published := int64(0)
	for _, a := range readOutputs(t, out).WindowAccounting {
		if m, ok := a.(map[string]any); ok {
			if n, ok := m["published_events"].(float64); ok {
				published += int64(n)
			}
		}
	}
	rollup := func(levels string) ([][]string, string) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"rollup", out, "--dataset", "campaign_metrics", "--levels", levels}, &stdout, &stderr); code != 0 {
			t.Fatalf("deid rollup --levels %q: exit %d\n%s", levels, code, stderr.String())
		}
		recs, err := csv.NewReader(&stdout).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs, stderr.String()
	}
	recs, msg := rollup("")
	events := 0
	for i, h := range recs[0] {
		if h == "events" {
			events = i
		}
	}
	var sum int64
	for _, r := range recs[1:] {
		n, _ := strconv.ParseInt(r[events], 10, 64)
		sum += n
	}
	usage := int64(0)
	for _, r := range readOutputs(t, out).Rows["usage_patterns/dt=2026-11-02"] {
		usage += int64(r["events"].(float64))
	}
	if sum != published-usage || !strings.Contains(msg, "0 rows (0 events) are coarser") {
		t.Errorf("rolled up to *: %d events (want %d published campaign events); %s", sum, published-usage, msg)
	}
	if _, msg := rollup("platform=0,content_type=0,industry=0,region=0,follower_tier=0"); strings.Contains(msg, " 0 rows (0 events) are coarser") {
		t.Errorf("rolled up to level 0, nothing was left out: %s", msg)
	}
}
