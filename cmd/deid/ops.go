package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/transforms/aggregate"
)

// serveOps serves the operations endpoints: /metrics (Prometheus),
// /healthz (the process is alive) and /readyz (consent caught up and
// partitions assigned). It returns once listening.
func serveOps(addr string, stats *pipeline.Stats, ready func() bool, counts stageCounts, log *zap.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http_addr: %w", err)
	}
	srv := &http.Server{Handler: opsHandler(stats, ready, counts, log)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operations server stopped", zap.Error(err))
		}
	}()
	log.Info("serving /metrics, /healthz, /readyz", zap.String("addr", ln.Addr().String()))
	return srv, nil
}

// opsHandler routes the operations endpoints.
func opsHandler(stats *pipeline.Stats, ready func() bool, counts stageCounts, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready == nil || !ready() || stats.Partitions.Load() == 0 {
			http.Error(w, "not ready: consent not caught up or no partition assigned", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(newRegistry(stats, counts), promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// stageCounts are the counts /metrics reads beside pipeline.Stats, each
// kept by the stage that counts it. A nil func exports zeros.
type stageCounts struct {
	// dropped counts the non-allowlisted fields the decoders skipped.
	dropped func() map[pipeline.EventKind]int64
	// others counts, per dataset and string dimension, the events whose
	// value read as the dimension's default (a value outside its declared
	// set, or none).
	others func() []aggregate.OtherCount
}

// newRegistry returns a registry with deid's metrics, read from stats and
// counts at each scrape, the build info, and the Go runtime and process
// collectors. A registry per server, not the global one: nothing registers
// itself behind the wiring's back.
func newRegistry(stats *pipeline.Stats, counts stageCounts) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(stats, counts),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Label values of deid's metrics. Every one is a constant of this binary
// (dispositions, pipeline.RecordReasons, the event kinds below), the
// operator's configuration (topics, input files, partition numbers) or the
// build: never anything read from a record. A field's name is input data
// too (it can be a phone number or an id), so dropped fields are counted
// per event kind, never per name.
//
// droppedEventTypes are the event_type label values of
// deid_decode_dropped_fields_total: the aggregated types, messages, and
// every other type under "other".
var droppedEventTypes = []struct {
	kind  pipeline.EventKind
	label string
}{
	{pipeline.KindCampaignMetrics, "campaign.metrics"},
	{pipeline.KindUsageInteraction, "usage.interaction"},
	{pipeline.KindMessage, "message"},
	{pipeline.KindUnsupported, "other"},
}

// statsCollector exports pipeline.Stats and the decoders' dropped-field
// counts. It reads the workers' atomic counters at scrape time, so the hot
// path stays an atomic add, free of label lookups, and package pipeline
// stays free of any metrics library. Safe for concurrent use.
type statsCollector struct {
	stats  *pipeline.Stats
	counts stageCounts

	read, records, windows, publish, checkpoint, assigned, dropDesc, others, build *prometheus.Desc
	partRecords, watermark, openWindows, dedupKeys, lag, stateBytes, checkpoints   *prometheus.Desc
	// A job of several instances (contract §13).
	fenced, restore, pending, oldest, waiting *prometheus.Desc
}

func newStatsCollector(stats *pipeline.Stats, counts stageCounts) *statsCollector {
	part := []string{"topic", "partition"}
	return &statsCollector{
		stats:  stats,
		counts: counts,
		read: prometheus.NewDesc("deid_records_read_total",
			"Input records read. Each ends with one disposition of deid_records_total, which add up to this.", nil, nil),
		records: prometheus.NewDesc("deid_records_total",
			"Input records by final disposition (contributed, excluded, dead_letter) and, for excluded records, reason.",
			[]string{"disposition", "reason"}, nil),
		windows: prometheus.NewDesc("deid_windows_published_total", "Dataset windows committed.", nil, nil),
		publish: prometheus.NewDesc("deid_publish_duration_seconds", "Time to publish a dataset window.", nil, nil),
		checkpoint: prometheus.NewDesc("deid_checkpoint_duration_seconds",
			"Time to write one partition's checkpoint.", nil, nil),
		assigned: prometheus.NewDesc("deid_partitions_assigned", "Partitions worked by this instance.", nil, nil),
		dropDesc: prometheus.NewDesc("deid_decode_dropped_fields_total",
			"Fields the allowlist dropped from well-formed events, by event type (campaign.metrics, usage.interaction, message, other); never by field name.",
			[]string{"event_type"}, nil),
		others: prometheus.NewDesc("deid_dimension_default_events_total",
			"Events whose dimension value read as the dimension's default (other, or ZZ for a country): outside the declared value set, or absent; by dataset and dimension, never by value.",
			[]string{"dataset", "dimension"}, nil),
		build: prometheus.NewDesc("deid_build_info", "Always 1; the labels name the build.",
			nil, prometheus.Labels{"version": version, "goversion": runtime.Version()}),
		partRecords: prometheus.NewDesc("deid_partition_records_total", "Input records read, by topic and partition.", part, nil),
		watermark:   prometheus.NewDesc("deid_partition_watermark_seconds", "Event-time watermark of the partition, Unix seconds.", part, nil),
		openWindows: prometheus.NewDesc("deid_partition_open_windows", "Windows open in the partition.", part, nil),
		dedupKeys:   prometheus.NewDesc("deid_partition_dedup_keys", "Event ids held for duplicate detection.", part, nil),
		lag:         prometheus.NewDesc("deid_partition_lag_records", "High-water mark less the next offset to read (Kafka; 0 for files).", part, nil),
		stateBytes:  prometheus.NewDesc("deid_partition_state_bytes", "Size of the partition's last checkpoint.", part, nil),
		checkpoints: prometheus.NewDesc("deid_checkpoints_total", "Checkpoints written, by topic and partition.", part, nil),
		fenced: prometheus.NewDesc("deid_partitions_fenced_total",
			"Partitions this instance dropped because the consumer group gave them to another member (a job of several instances).", nil, nil),
		restore: prometheus.NewDesc("deid_restore_seconds",
			"Time to restore a partition from its checkpoint when it was assigned: what a takeover costs beyond the session timeout.", nil, nil),
		pending: prometheus.NewDesc("deid_pending_windows", "Dataset windows the publisher (stage 2) waits on.", nil, nil),
		oldest: prometheus.NewDesc("deid_oldest_pending_window_seconds",
			"Age of the oldest window the publisher waits on, from its end to now (0 when none).", nil, nil),
		waiting: prometheus.NewDesc("deid_close_records_waiting", "Close records of the windows the publisher waits on.", nil, nil),
	}
}

// Describe sends every metric's description.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.read, c.records, c.windows, c.publish, c.checkpoint, c.assigned, c.dropDesc, c.others, c.build,
		c.partRecords, c.watermark, c.openWindows, c.dedupKeys, c.lag, c.stateBytes, c.checkpoints,
		c.fenced, c.restore, c.pending, c.oldest, c.waiting} {
		ch <- d
	}
}

// Collect reads the counters and sends them.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.read, s.Records.Load())
	counter(c.records, s.Contributed.Load(), pipeline.Contributed.String(), "")
	for _, r := range pipeline.RecordReasons() {
		counter(c.records, s.Excluded[r].Load(), pipeline.Excluded.String(), r.String())
	}
	counter(c.records, s.DeadLetters.Load(), pipeline.DeadLetter.String(), "")
	counter(c.windows, s.Windows.Load())
	ch <- latencyMetric(c.publish, s.Publish.Snapshot())
	ch <- latencyMetric(c.checkpoint, s.Checkpoint.Snapshot())
	gauge(c.assigned, float64(s.Partitions.Load()))
	gauge(c.build, 1)
	counter(c.fenced, s.Fenced.Load())
	ch <- latencyMetric(c.restore, s.Restore.Snapshot())
	gauge(c.pending, float64(s.PendingWindows.Load()))
	age := 0.0
	if end := s.OldestPending.Load(); end > 0 {
		age = max(0, time.Since(time.UnixMicro(end)).Seconds())
	}
	gauge(c.oldest, age)
	gauge(c.waiting, float64(s.CloseRecordsWaiting.Load()))

	var dropped map[pipeline.EventKind]int64
	if c.counts.dropped != nil {
		dropped = c.counts.dropped()
	}
	byLabel := make(map[string]int64, len(droppedEventTypes))
	for k, n := range dropped {
		byLabel[droppedEventType(k)] += n
	}
	for _, et := range droppedEventTypes {
		counter(c.dropDesc, byLabel[et.label], et.label)
	}

	if c.counts.others != nil {
		for _, o := range c.counts.others() {
			counter(c.others, o.Events, o.Dataset, o.Dimension)
		}
	}

	for _, p := range s.PartitionSnapshots() {
		topic, part := p.ID.Source, strconv.Itoa(int(p.ID.Partition))
		counter(c.partRecords, p.Records, topic, part)
		gauge(c.watermark, float64(p.Watermark)/1e6, topic, part)
		gauge(c.openWindows, float64(p.OpenWindows), topic, part)
		gauge(c.dedupKeys, float64(p.DedupKeys), topic, part)
		gauge(c.lag, float64(p.Lag), topic, part)
		gauge(c.stateBytes, float64(p.StateBytes), topic, part)
		counter(c.checkpoints, p.Checkpoints, topic, part)
	}
}

// droppedEventType is the label of kind k: one of droppedEventTypes, and
// "other" for a kind not listed there.
func droppedEventType(k pipeline.EventKind) string {
	for _, et := range droppedEventTypes {
		if et.kind == k {
			return et.label
		}
	}
	return "other"
}

// latencyMetric is a histogram of s with pipeline.LatencyBuckets.
func latencyMetric(d *prometheus.Desc, s pipeline.LatencySnapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(s.Cumulative))
	for i, n := range s.Cumulative {
		buckets[pipeline.LatencyBuckets[i]] = n
	}
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum, buckets)
}
