package pipeline

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are live counters for progress and metrics, updated atomically by
// the workers and the publisher while a run goes on. The zero value is
// ready to use. Stats holds counts, durations and partition ids only: never
// anything read from a record, so nothing derived from input can reach a
// metric through it.
type Stats struct {
	// Records counts input records read.
	Records     atomic.Int64
	Contributed atomic.Int64
	DeadLetters atomic.Int64
	// Excluded counts excluded records by reason; only RecordReasons are
	// used.
	Excluded [numReasons]atomic.Int64
	// Windows counts dataset windows published.
	Windows atomic.Int64
	// Partitions is the number of partitions being worked now.
	Partitions atomic.Int64

	// Publish is the time the publisher took to publish a dataset window.
	Publish Latency
	// Checkpoint is the time a worker took to write its partition's
	// checkpoint.
	Checkpoint Latency

	// In a job of several instances (contract §13):
	// Fenced counts partitions dropped because the group gave them to
	// another member.
	Fenced atomic.Int64
	// Restore is the time a worker took to restore its partition from its
	// checkpoint when it was assigned: what a takeover costs beyond the
	// session timeout.
	Restore Latency
	// PendingWindows is the number of dataset windows stage 2 waits on.
	PendingWindows atomic.Int64
	// OldestPending is the end (µs) of the oldest window stage 2 waits
	// on, 0 when none.
	OldestPending atomic.Int64
	// CloseRecordsWaiting counts the close records of the windows stage 2
	// waits on.
	CloseRecordsWaiting atomic.Int64

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
	StateBytes  atomic.Int64
	Checkpoints atomic.Int64
	DedupKeys   atomic.Int64
}

// Partition returns the counters of partition id, creating them. Safe for
// concurrent use.
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

// Assigned records that the partitions worked now are ids (a new Kafka
// generation, or the files of a run): it sets Partitions and forgets the
// counters of every other partition, so that the gauges of a partition that
// a rebalance gave to another instance do not go on reporting a stale
// watermark or lag. A partition that stays keeps its counters. Safe for
// concurrent use, in particular with Partitions (a scrape).
func (s *Stats) Assigned(ids []PartitionID) {
	keep := make(map[PartitionID]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.parts {
		if !keep[id] {
			delete(s.parts, id)
		}
	}
	s.Partitions.Store(int64(len(keep)))
}

// PartitionSnapshot is one partition's counters at one moment, as plain
// values.
type PartitionSnapshot struct {
	ID      PartitionID
	Records int64
	// Watermark is in microseconds since the Unix epoch (0 before any event).
	Watermark   int64
	OpenWindows int64
	DedupKeys   int64
	// Lag is the high-water mark less the next position to read, when the
	// source reports a high-water mark (Kafka); else 0.
	Lag         int64
	StateBytes  int64
	Checkpoints int64
}

// PartitionSnapshots returns the counters of every partition known now,
// ordered by source and partition. Safe for concurrent use with Partition
// and Assigned: the partition table is read only under the lock, so a
// scrape during a rebalance never reads a map being written.
func (s *Stats) PartitionSnapshots() []PartitionSnapshot {
	s.mu.Lock()
	out := make([]PartitionSnapshot, 0, len(s.parts))
	for id, p := range s.parts {
		out = append(out, p.snapshot(id))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b PartitionSnapshot) int {
		return cmp.Or(strings.Compare(a.ID.Source, b.ID.Source), cmp.Compare(a.ID.Partition, b.ID.Partition))
	})
	return out
}

func (p *PartitionStats) snapshot(id PartitionID) PartitionSnapshot {
	ps := PartitionSnapshot{ID: id, Records: p.Records.Load(), Watermark: p.Watermark.Load(),
		OpenWindows: p.OpenWindows.Load(), DedupKeys: p.DedupKeys.Load(), StateBytes: p.StateBytes.Load(),
		Checkpoints: p.Checkpoints.Load()}
	if hw := p.HighWater.Load(); hw > 0 {
		ps.Lag = max(0, hw-p.Next.Load())
	}
	return ps
}

// LatencyBuckets are the upper bounds, in seconds, of Latency's buckets:
// from a millisecond (a small checkpoint) to a minute (a large window
// written to slow storage).
var LatencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Latency is a histogram of durations over LatencyBuckets, kept in atomic
// counters so that observing costs no lock and no allocation. The zero
// value is ready to use; safe for concurrent use.
type Latency struct {
	// counts[i] counts durations in bucket i (not cumulative); the last
	// counts those above every bound.
	counts [len(LatencyBuckets) + 1]atomic.Uint64
	nanos  atomic.Int64
}

// Observe adds one duration.
func (l *Latency) Observe(d time.Duration) {
	sec := d.Seconds()
	i, _ := slices.BinarySearch(LatencyBuckets[:], sec) // the first bound >= sec
	l.counts[i].Add(1)
	l.nanos.Add(int64(d))
}

// LatencySnapshot is a Latency at one moment.
type LatencySnapshot struct {
	// Cumulative[i] counts the durations <= LatencyBuckets[i].
	Cumulative [len(LatencyBuckets)]uint64
	// Count counts every duration.
	Count uint64
	// Sum is the total of the durations, in seconds.
	Sum float64
}

// Snapshot returns the histogram's counts. Count is the sum of the buckets
// read, so the cumulative counts never exceed it even while observations go
// on.
func (l *Latency) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range l.counts {
		s.Count += l.counts[i].Load()
		if i < len(s.Cumulative) {
			s.Cumulative[i] = s.Count
		}
	}
	s.Sum = time.Duration(l.nanos.Load()).Seconds()
	return s
}

// HighWaterMarker is implemented by partition readers that know the high
// water mark of their partition (Kafka), for the lag metric.
type HighWaterMarker interface {
	HighWaterMark() int64
}
