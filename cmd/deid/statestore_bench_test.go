package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"time"

	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/pipeline"
)

// countingStore counts the bytes written to and read from a state store.
type countingStore struct {
	pipeline.StateStore
	put, got, puts atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte, createOnly bool) error {
	c.put.Add(int64(len(data)))
	c.puts.Add(1)
	return c.StateStore.Put(ctx, key, data, createOnly)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.StateStore.Get(ctx, key)
	c.got.Add(int64(len(b)))
	return b, err
}

// BenchmarkKeyLog is what the dedup keys cost in checkpoints, per event,
// on a directory and on S3: one window gaining keys (one per event) between
// checkpoints, 64 checkpoints (so runs merge twice over), at two rates —
// 1 000 and 10 000 events/s in a partition at the default checkpoint
// interval of 10 s. Reported per event: wall time (ns/event), bytes written
// (B/event: runs, merges and the checkpoint objects) and read back for
// merges (read-B/event), and requests (puts/kevent).
func BenchmarkKeyLog(b *testing.B) {
	const checkpoints = 64
	interval := 10 * time.Second
	for _, name := range []string{"local", "s3"} {
		for _, rate := range []int{1_000, 10_000} {
			perCheckpoint := rate * int(interval/time.Second)
			b.Run(fmt.Sprintf("%s/%d events per s", name, rate), func(b *testing.B) {
				var open func(i int) pipeline.StateStore
				switch name {
				case "local":
					open = func(int) pipeline.StateStore {
						cfg := defaultConfig()
						cfg.StateDir = b.TempDir()
						s, err := openStateObjects(context.Background(), &cfg, zap.NewNop())
						if err != nil {
							b.Fatal(err)
						}
						return stateStore{s}
					}
				case "s3":
					srv := s3test.Require(b)
					bucket := srv.Bucket(b)
					open = func(i int) pipeline.StateStore {
						return openS3State(b, srv, fmt.Sprintf("s3://%s/bench/%d", bucket, i))
					}
				}
				var events int64
				var put, got, puts int64
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					cs := &countingStore{StateStore: open(i)}
					b.StartTimer()
					if err := pipeline.KeyLogLoad(context.Background(), cs, "bench", perCheckpoint, checkpoints); err != nil {
						b.Fatal(err)
					}
					events += int64(perCheckpoint * checkpoints)
					put, got, puts = put+cs.put.Load(), got+cs.got.Load(), puts+cs.puts.Load()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
				b.ReportMetric(float64(put)/float64(events), "B/event")
				b.ReportMetric(float64(got)/float64(events), "read-B/event")
				b.ReportMetric(float64(puts)*1000/float64(events), "puts/kevent")
			})
		}
	}
}
