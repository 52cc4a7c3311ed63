package pipeline

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are live counters for progress and metrics, updated atomically by
// the workers and the publisher while a run goes on. The zero value is
// ready to use.
type Stats struct {
	Records     atomic.Int64
	Contributed atomic.Int64
	DeadLetters atomic.Int64
	Excluded    [numReasons]atomic.Int64
	// Windows counts dataset windows published.
	Windows atomic.Int64
	// Partitions is the number of partitions being worked now.
	Partitions atomic.Int64

	PublishCount atomic.Int64
	PublishNanos atomic.Int64

	mu    sync.Mutex
	parts map[PartitionID]*PartitionStats
}

// PartitionStats are one partition's live counters.
type PartitionStats struct {
	Records atomic.Int64
	// Watermark is the partition's watermark, microseconds (0 before any event).
	Watermark atomic.Int64
	// OpenWindows is the number of windows open in the partition.
	OpenWindows atomic.Int64
	// Next is the next input position to read.
	Next atomic.Int64
	// HighWater is the source's high-water mark, when it reports one (Kafka).
	HighWater atomic.Int64
	// StateBytes is the size of the partition's last checkpoint.
	StateBytes      atomic.Int64
	Checkpoints     atomic.Int64
	CheckpointNanos atomic.Int64
	DedupKeys       atomic.Int64
}

// Partition returns the counters of partition id, creating them.
func (s *Stats) Partition(id PartitionID) *PartitionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts == nil {
		s.parts = map[PartitionID]*PartitionStats{}
	}
	p := s.parts[id]
	if p == nil {
		p = &PartitionStats{}
		s.parts[id] = p
	}
	return p
}

func (s *Stats) observePublish(d time.Duration) {
	s.PublishCount.Add(1)
	s.PublishNanos.Add(int64(d))
}

// WritePrometheus writes the counters in the Prometheus text exposition
// format. Label values are partition ids and reasons: never an identifier
// of a customer or a person.
func (s *Stats) WritePrometheus(w io.Writer) {
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("deid_records_total", "counter", "Input records read, by disposition.")
	fmt.Fprintf(w, "deid_records_total{disposition=\"read\"} %d\n", s.Records.Load())
	fmt.Fprintf(w, "deid_records_total{disposition=\"contributed\"} %d\n", s.Contributed.Load())
	fmt.Fprintf(w, "deid_records_total{disposition=\"dead_letter\"} %d\n", s.DeadLetters.Load())
	var excluded int64
	for _, r := range RecordReasons() {
		excluded += s.Excluded[r].Load()
	}
	fmt.Fprintf(w, "deid_records_total{disposition=\"excluded\"} %d\n", excluded)
	metric("deid_excluded_total", "counter", "Records excluded, by reason.")
	for _, r := range RecordReasons() {
		fmt.Fprintf(w, "deid_excluded_total{reason=%q} %d\n", r.String(), s.Excluded[r].Load())
	}
	metric("deid_windows_published_total", "counter", "Dataset windows committed.")
	fmt.Fprintf(w, "deid_windows_published_total %d\n", s.Windows.Load())
	metric("deid_publish_seconds", "summary", "Time to publish a dataset window.")
	fmt.Fprintf(w, "deid_publish_seconds_sum %g\ndeid_publish_seconds_count %d\n",
		time.Duration(s.PublishNanos.Load()).Seconds(), s.PublishCount.Load())
	metric("deid_partitions_assigned", "gauge", "Partitions worked by this instance.")
	fmt.Fprintf(w, "deid_partitions_assigned %d\n", s.Partitions.Load())

	s.mu.Lock()
	ids := make([]PartitionID, 0, len(s.parts))
	for id := range s.parts {
		ids = append(ids, id)
	}
	parts := s.parts
	s.mu.Unlock()
	slices.SortFunc(ids, func(a, b PartitionID) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Partition, b.Partition))
	})
	gauges := []struct {
		name, typ, help string
		v               func(*PartitionStats) string
	}{
		{"deid_partition_records_total", "counter", "Input records read, by topic and partition.", func(p *PartitionStats) string { return fmt.Sprint(p.Records.Load()) }},
		{"deid_partition_watermark_seconds", "gauge", "Event-time watermark of the partition.", func(p *PartitionStats) string {
			return fmt.Sprint(float64(p.Watermark.Load()) / 1e6)
		}},
		{"deid_partition_open_windows", "gauge", "Windows open in the partition.", func(p *PartitionStats) string { return fmt.Sprint(p.OpenWindows.Load()) }},
		{"deid_partition_dedup_keys", "gauge", "Event ids held for duplicate detection.", func(p *PartitionStats) string { return fmt.Sprint(p.DedupKeys.Load()) }},
		{"deid_partition_lag_records", "gauge", "High-water mark less the next offset to read (Kafka).", func(p *PartitionStats) string {
			if hw := p.HighWater.Load(); hw > 0 {
				return fmt.Sprint(max(0, hw-p.Next.Load()))
			}
			return "0"
		}},
		{"deid_partition_state_bytes", "gauge", "Size of the partition's last checkpoint.", func(p *PartitionStats) string { return fmt.Sprint(p.StateBytes.Load()) }},
		{"deid_checkpoint_seconds_sum", "counter", "Time spent checkpointing.", func(p *PartitionStats) string {
			return fmt.Sprint(time.Duration(p.CheckpointNanos.Load()).Seconds())
		}},
		{"deid_checkpoints_total", "counter", "Checkpoints written.", func(p *PartitionStats) string { return fmt.Sprint(p.Checkpoints.Load()) }},
	}
	for _, g := range gauges {
		metric(g.name, g.typ, g.help)
		for _, id := range ids {
			fmt.Fprintf(w, "%s{topic=%q,partition=\"%d\"} %s\n", g.name, id.Source, id.Partition, g.v(parts[id]))
		}
	}
}

// HighWaterMarker is implemented by partition readers that know the high
// water mark of their partition (Kafka), for the lag metric.
type HighWaterMarker interface {
	HighWaterMark() int64
}
