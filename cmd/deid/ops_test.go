package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/decode"
)

// getMetrics scrapes /metrics from h and returns the body and its parsed
// families.
func getMetrics(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return string(body), families
}

// TestMetricsNeverCarryInputData feeds records whose field names are
// personal data or ids (a phone number, a creator id, a name with an SSN, a
// canary in a message event) through the decoder and checks that no label
// value of /metrics holds any of them: every deid_ label value comes from
// a fixed set, and the canaries appear nowhere in the exposition.
func TestMetricsNeverCarryInputData(t *testing.T) {
	canaries := []string{"15551234567", "cr_748af4a635", "jane_doe_ssn_123456789", "canary_msg_5f2e9a", "canary_type_77c1", "jane@example.com", "canary_ind_3c1d"}
	env := func(typ string) string {
		return `"event_id":"e1","event_type":"` + typ + `","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1"`
	}
	campaign := `"campaign_id":"c1","creator_id":"cr1","follower_count":10`
	records := []string{
		`{` + env("campaign.metrics") + `,"payload":{` + campaign + `,"15551234567":"call me","cr_748af4a635":1}}`,
		`{"jane_doe_ssn_123456789":true,` + env("campaign.metrics") + `,"payload":{` + campaign + `,"jane@example.com":1}}`,
		`{` + env("usage.interaction") + `,"user_id":"u1","payload":{"feature":"a.b","team_size":3,"payload.15551234567":1}}`,
		`{` + env("message.direct") + `,"canary_msg_5f2e9a":"x","payload":{"body":"canary_msg_5f2e9a"}}`,
		`{` + env("canary_type_77c1") + `,"cr_748af4a635":1,"payload":{}}`,
	}
	decoders, err := decode.NewDecoders(decode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	d := decoders.NewDecoder()
	for _, r := range records {
		var ev pipeline.Event
		if err := d.Decode([]byte(r), &ev); err != nil {
			t.Fatalf("Decode(%s): %v", r, err)
		}
	}
	stats := &pipeline.Stats{}
	stats.Partition(pipeline.PartitionID{Source: "events", Partition: 3}).Records.Add(5)
	stats.Records.Add(5)
	stats.Excluded[pipeline.ReasonMessageContent].Add(1)

	// A value outside a dimension's declared set is aggregated as "other"
	// and counted per dataset and dimension, never by its text.
	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	var aggs []*aggregate.Aggregator
	for _, spec := range specs {
		a, err := aggregate.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		aggs = append(aggs, a)
	}
	strayDecoders, err := decode.NewDecoders(decode.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var stray pipeline.Event
	if err := strayDecoders.NewDecoder().Decode([]byte(`{`+env("campaign.metrics")+`,"payload":{`+campaign+`,"industry":"canary_ind_3c1d.x"}}`), &stray); err != nil {
		t.Fatal(err)
	}
	pz := pipeline.NewPseudonymizer([]byte("key"))
	aggs[0].Add(pipeline.NewPartial(specs[0].Name, pipeline.Window{}), &stray, pz.Of(stray.WorkspaceID), pz)
	others := func() []aggregate.OtherCount {
		var out []aggregate.OtherCount
		for _, a := range aggs {
			out = append(out, a.OtherCounts()...)
		}
		return out
	}

	body, families := getMetrics(t, opsHandler(stats, nil, stageCounts{dropped: decoders.DroppedFields, others: others}, zap.NewNop()))
	for _, c := range canaries {
		if strings.Contains(body, c) {
			t.Errorf("/metrics holds %q", c)
		}
	}
	reasons := []string{""}
	for _, r := range pipeline.RecordReasons() {
		reasons = append(reasons, r.String())
	}
	allowed := map[string][]string{
		"disposition": {"contributed", "excluded", "dead_letter"},
		"reason":      reasons,
		"event_type":  {"campaign.metrics", "usage.interaction", "message", "other"},
		"topic":       {"events"},
		"partition":   {"3"},
		"version":     {version},
		"goversion":   {runtime.Version()},
	}
	for _, spec := range specs {
		allowed["dataset"] = append(allowed["dataset"], spec.Name)
		for _, d := range spec.Dimensions {
			allowed["dimension"] = append(allowed["dimension"], d.Name)
		}
	}
	labels := 0
	for name, f := range families {
		if !strings.HasPrefix(name, "deid_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels++
				if !slices.Contains(allowed[lp.GetName()], lp.GetValue()) {
					t.Errorf("%s{%s=%q}: not a value of the fixed set %q", name, lp.GetName(), lp.GetValue(), allowed[lp.GetName()])
				}
			}
		}
	}
	if labels < 20 {
		t.Errorf("only %d deid_ label values scanned: the scan misses metrics", labels)
	}
	// The drops are still counted, per event type.
	got := map[string]float64{}
	for _, m := range families["deid_decode_dropped_fields_total"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"campaign.metrics": 4, "usage.interaction": 1, "message": 1, "other": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deid_decode_dropped_fields_total (-want +got):\n%s", diff)
	}
	defaults := map[string]float64{}
	for _, m := range families["deid_dimension_default_events_total"].GetMetric() {
		defaults[m.GetLabel()[0].GetValue()+"."+m.GetLabel()[1].GetValue()] = m.GetCounter().GetValue()
	}
	if defaults["campaign_metrics.industry"] != 1 {
		t.Errorf("deid_dimension_default_events_total: %v, want campaign_metrics.industry = 1 for the stray", defaults)
	}
}

// TestMetricsExposition checks the metric types and the values of a scrape:
// counters are *_total, latencies are histograms, the build info is 1, the
// Go and process collectors are there, and records read is its own metric,
// equal to the sum of the final dispositions.
func TestMetricsExposition(t *testing.T) {
	stats := &pipeline.Stats{}
	stats.Records.Add(10)
	stats.Contributed.Add(6)
	stats.DeadLetters.Add(1)
	stats.Excluded[pipeline.ReasonDuplicate].Add(2)
	stats.Excluded[pipeline.ReasonOptedOut].Add(1)
	stats.Windows.Add(2)
	stats.Publish.Observe(3 * time.Millisecond)
	stats.Publish.Observe(2 * time.Second)
	stats.Checkpoint.Observe(40 * time.Millisecond)
	stats.Assigned([]pipeline.PartitionID{{Source: "events", Partition: 0}})
	p := stats.Partition(pipeline.PartitionID{Source: "events", Partition: 0})
	p.Records.Add(10)
	p.Watermark.Store(1_700_000_000_000_000)
	p.HighWater.Store(25)
	p.Next.Store(10)
	p.Checkpoints.Add(1)
	stats.Fenced.Add(2)
	stats.PendingWindows.Store(3)
	stats.CloseRecordsWaiting.Store(4)
	stats.OldestPending.Store(time.Now().Add(-time.Hour).UnixMicro())

	_, families := getMetrics(t, opsHandler(stats, nil, stageCounts{}, zap.NewNop()))
	for name, f := range families {
		if strings.HasSuffix(name, "_total") && f.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is a %s, want a counter", name, f.GetType())
		}
		if strings.HasPrefix(name, "deid_") && f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s is not named *_total", name)
		}
	}
	types := map[string]dto.MetricType{
		"deid_records_read_total":            dto.MetricType_COUNTER,
		"deid_records_total":                 dto.MetricType_COUNTER,
		"deid_windows_published_total":       dto.MetricType_COUNTER,
		"deid_decode_dropped_fields_total":   dto.MetricType_COUNTER,
		"deid_partition_records_total":       dto.MetricType_COUNTER,
		"deid_checkpoints_total":             dto.MetricType_COUNTER,
		"deid_publish_duration_seconds":      dto.MetricType_HISTOGRAM,
		"deid_checkpoint_duration_seconds":   dto.MetricType_HISTOGRAM,
		"deid_partitions_assigned":           dto.MetricType_GAUGE,
		"deid_partition_watermark_seconds":   dto.MetricType_GAUGE,
		"deid_partition_open_windows":        dto.MetricType_GAUGE,
		"deid_partition_dedup_keys":          dto.MetricType_GAUGE,
		"deid_partition_lag_records":         dto.MetricType_GAUGE,
		"deid_partition_state_bytes":         dto.MetricType_GAUGE,
		"deid_build_info":                    dto.MetricType_GAUGE,
		"deid_partitions_fenced_total":       dto.MetricType_COUNTER,
		"deid_restore_seconds":               dto.MetricType_HISTOGRAM,
		"deid_pending_windows":               dto.MetricType_GAUGE,
		"deid_oldest_pending_window_seconds": dto.MetricType_GAUGE,
		"deid_close_records_waiting":         dto.MetricType_GAUGE,
		"go_goroutines":                      dto.MetricType_GAUGE,
		"go_gc_duration_seconds":             dto.MetricType_SUMMARY,
		"process_cpu_seconds_total":          dto.MetricType_COUNTER,
		"process_resident_memory_bytes":      dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		if f := families[name]; f == nil {
			t.Errorf("%s missing", name)
		} else if f.GetType() != typ {
			t.Errorf("%s is a %s, want a %s", name, f.GetType(), typ)
		}
	}

	value := func(name string, labels ...string) float64 {
		t.Helper()
	metrics:
		for _, m := range families[name].GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels)/2 || lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
					continue metrics
				}
			}
			if len(m.GetLabel()) != len(labels)/2 {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
		t.Errorf("no %s%q", name, labels)
		return -1
	}
	var final float64
	for _, m := range families["deid_records_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "disposition" && lp.GetValue() == "read" {
				t.Errorf("deid_records_total has disposition=\"read\": read would be summed with its own dispositions")
			}
		}
		final += m.GetCounter().GetValue()
	}
	if read := value("deid_records_read_total"); read != 10 || final != read {
		t.Errorf("records read %v, sum of deid_records_total %v; want both 10", read, final)
	}
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"disposition", "contributed", "reason", ""}, 6},
		{[]string{"disposition", "dead_letter", "reason", ""}, 1},
		{[]string{"disposition", "excluded", "reason", "duplicate"}, 2},
		{[]string{"disposition", "excluded", "reason", "opted_out"}, 1},
		{[]string{"disposition", "excluded", "reason", "late_event"}, 0},
	} {
		if got := value("deid_records_total", tt.labels...); got != tt.want {
			t.Errorf("deid_records_total%q = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if f, n, w, age := value("deid_partitions_fenced_total"), value("deid_pending_windows"), value("deid_close_records_waiting"),
		value("deid_oldest_pending_window_seconds"); f != 2 || n != 3 || w != 4 || age < 3600 || age > 3700 {
		t.Errorf("fenced %v, pending windows %v, close records waiting %v, oldest pending age %v s; want 2, 3, 4 and an hour", f, n, w, age)
	}
	if got := value("deid_partition_lag_records", "partition", "0", "topic", "events"); got != 15 {
		t.Errorf("lag = %v, want 15", got)
	}
	if got := value("deid_partition_watermark_seconds", "partition", "0", "topic", "events"); got != 1.7e9 {
		t.Errorf("watermark = %v, want 1.7e9", got)
	}
	if got := value("deid_build_info", "goversion", runtime.Version(), "version", version); got != 1 {
		t.Errorf("deid_build_info = %v, want 1", got)
	}
	h := families["deid_publish_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 2.003 || h.GetSampleSum() > 2.0031 {
		t.Errorf("publish histogram count %d sum %v, want 2 and 2.003", h.GetSampleCount(), h.GetSampleSum())
	}
	buckets := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if len(buckets) < len(pipeline.LatencyBuckets) {
		t.Errorf("%d buckets, want %d", len(buckets), len(pipeline.LatencyBuckets))
	}
	for le, want := range map[float64]uint64{0.0025: 0, 0.005: 1, 1: 1, 2.5: 2, 60: 2} {
		if buckets[le] != want {
			t.Errorf("publish bucket le=%v: %d, want %d", le, buckets[le], want)
		}
	}
}

// TestScrapeDuringRebalance scrapes while partitions are added and taken
// away. Reading the partition table outside its lock was a concurrent map
// read and write: under -race it is reported, and without it the process
// could crash.
func TestScrapeDuringRebalance(t *testing.T) {
	stats := &pipeline.Stats{}
	reg := newRegistry(stats, stageCounts{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rebalances atomic.Int64
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ids := make([]pipeline.PartitionID, 0, 8)
				for p := range 8 {
					id := pipeline.PartitionID{Source: fmt.Sprintf("t%d", g), Partition: int32((i + p) % 16)}
					stats.Partition(id).Records.Add(1)
					ids = append(ids, id)
				}
				stats.Assigned(ids[:i%8])
				rebalances.Add(1)
			}
		}()
	}
	// Scrape until both sides have done enough, so that they overlap.
	for scrapes := 0; scrapes < 200 || rebalances.Load() < 2000; scrapes++ {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
