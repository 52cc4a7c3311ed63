package pipeline

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPartitionSnapshotsDuringRebalance reads the partition table (what a
// scrape does) while workers add partitions and a rebalance takes some
// away. Run with -race: a read of the table outside its lock is reported,
// and without -race it can crash the process ("concurrent map read and map
// write").
func TestPartitionSnapshotsDuringRebalance(t *testing.T) {
	var s Stats
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
				var ids []PartitionID
				for p := range 8 {
					id := PartitionID{Source: []string{"a", "b"}[g], Partition: int32((i + p) % 16)}
					s.Partition(id).Records.Add(1)
					ids = append(ids, id)
				}
				s.Assigned(ids[:i%8])
				rebalances.Add(1)
			}
		}()
	}
	// Scrape until both sides have done enough, so that they overlap.
	for scrapes := 0; scrapes < 2000 || rebalances.Load() < 2000; scrapes++ {
		for _, p := range s.PartitionSnapshots() {
			if p.Records < 0 {
				t.Fatalf("partition %s: %d records", p.ID, p.Records)
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestAssignedForgetsPartitionsNoLongerWorked(t *testing.T) {
	var s Stats
	a, b, c := PartitionID{"t", 0}, PartitionID{"t", 1}, PartitionID{"t", 2}
	s.Assigned([]PartitionID{a, b})
	s.Partition(a).Records.Add(3)
	s.Partition(b).Records.Add(4)
	s.Partition(b).HighWater.Store(10)
	s.Partition(b).Next.Store(4)
	s.Assigned([]PartitionID{b, c})
	s.Partition(c)
	want := []PartitionSnapshot{{ID: b, Records: 4, Lag: 6}, {ID: c}}
	if diff := cmp.Diff(want, s.PartitionSnapshots()); diff != "" {
		t.Errorf("PartitionSnapshots (-want +got):\n%s", diff)
	}
	if n := s.Partitions.Load(); n != 2 {
		t.Errorf("Partitions = %d, want 2", n)
	}
}

func TestLatencyBuckets(t *testing.T) {
	var l Latency
	for _, d := range []time.Duration{0, time.Millisecond, 1500 * time.Microsecond, time.Second, 2 * time.Minute} {
		l.Observe(d)
	}
	s := l.Snapshot()
	// 0 and 1ms are <= 0.001; 1.5ms <= 0.0025; 1s <= 1; 2 minutes only in +Inf.
	want := LatencySnapshot{Count: 5, Sum: 121.0025}
	for i, le := range LatencyBuckets {
		switch {
		case le >= 1:
			want.Cumulative[i] = 4
		case le >= 0.0025:
			want.Cumulative[i] = 3
		default:
			want.Cumulative[i] = 2
		}
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
}
