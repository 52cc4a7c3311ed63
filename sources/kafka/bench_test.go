package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// Benchmark data: 4 partitions of 50,000 events of about 420 bytes, like
// the platform's campaign.metrics events.
const (
	benchPartitions = 4
	benchPerPart    = 50_000
)

func benchEvent(i int) []byte {
	return fmt.Appendf(nil, `{"event_id":"evt-%012d","event_type":"campaign.metrics","occurred_at":"2026-11-01T12:%02d:%02dZ",`+
		`"workspace_id":"ws-%05d","user_id":"usr-%06d","payload":{"campaign_id":"cmp-%06d","creator_id":"cr-%06d",`+
		`"platform":"instagram","content_type":"reel","industry":"beauty.skincare","audience_country":"DE","follower_count":%d,`+
		`"impressions":%d,"reach":%d,"clicks":%d,"likes":%d,"comments":%d,"shares":%d,"saves":%d,"video_views":%d,`+
		`"conversions":%d,"spend_cents":%d,"revenue_cents":%d,"caption":"new drop"}}`,
		i, i%60, i%60, i%5000, i%20000, i%3000, i%9000, 1000+i%900000, i%100000, i%80000, i%900, i%700, i%90, i%40, i%30, i%50000, i%20, i%90000, i%150000)
}

// cpuTime returns the process's user+system CPU time: the benchmark's and,
// in process, the fake broker's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs read b.N times, each reading every record once, and reports
// records/s, records per CPU-second (broker included when in process) and
// allocations per record.
func measure(b *testing.B, total int, read func(b *testing.B) int) {
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := cpuTime(), time.Now()
	b.ResetTimer()
	for range b.N {
		if n := read(b); n != total {
			b.Fatalf("read %d records, want %d", n, total)
		}
	}
	b.StopTimer()
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	runtime.ReadMemStats(&ms1)
	recs := float64(total) * float64(b.N)
	b.ReportMetric(recs/wall.Seconds(), "rec/s")
	b.ReportMetric(recs/cpu.Seconds(), "rec/cpu-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/recs, "allocs/rec")
}

// BenchmarkConsume reads a 4-partition topic to its end, one goroutine per
// partition as the engine does: through deid's Source (Conn batches,
// Batch.Read into a reused buffer), through a bare kafka-go Conn batch
// reader (Batch.ReadMessage, allocating each message), and through
// kafka-go's Reader (FetchMessage per record). The fake broker runs in
// process and its CPU counts in rec/cpu-s; set DEID_KAFKA_BROKERS to run
// the same against the real broker.
func BenchmarkConsume(b *testing.B) {
	clusters := map[string]func(testing.TB) *kafkatest.Cluster{
		"fake": func(tb testing.TB) *kafkatest.Cluster { return kafkatest.Fake(tb) },
		"real": kafkatest.Real,
	}
	for _, name := range []string{"fake", "real"} {
		b.Run(name, func(b *testing.B) {
			c := clusters[name](b)
			topic := kafkatest.Name(b, "bench")
			kafkatest.CreateTopic(b, c.Brokers, topic, benchPartitions, false)
			var msgs []kafkatest.Message
			for p := range int32(benchPartitions) {
				for i := range benchPerPart {
					msgs = append(msgs, kafkatest.Message{Partition: p, Value: benchEvent(int(p)*benchPerPart + i)})
				}
			}
			kafkatest.Produce(b, c.Brokers, topic, msgs)
			total := benchPartitions * benchPerPart
			b.SetBytes(int64(len(msgs[0].Value)) * int64(total))

			b.Run("deid-source", func(b *testing.B) {
				cfg := testConfig(b, c, topic)
				cfg.FetchMaxBytes = 4 << 20
				g := assign(b, newSource(b, cfg, kafkasrc.StopAtEnd()))
				zero := func(pipeline.PartitionID) (int64, bool) { return 0, true }
				measure(b, total, func(b *testing.B) int {
					rs, err := g.Open(context.Background(), zero)
					if err != nil {
						b.Fatal(err)
					}
					return eachPartition(len(rs), func(i int) int {
						defer rs[i].Close()
						n := 0
						for {
							batch, err := rs[i].Next(context.Background())
							if errors.Is(err, io.EOF) {
								return n
							}
							if err != nil {
								b.Error(err)
								return n
							}
							n += len(batch)
						}
					})
				})
			})

			b.Run("kafka-go-conn-batch", func(b *testing.B) {
				measure(b, total, func(b *testing.B) int {
					return eachPartition(benchPartitions, func(p int) int {
						conn, err := kafka.DialLeader(context.Background(), "tcp", c.Brokers[0], topic, p)
						if err != nil {
							b.Error(err)
							return 0
						}
						defer conn.Close()
						n, next := 0, int64(0)
						for next < benchPerPart {
							batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
							for {
								m, err := batch.ReadMessage()
								if err != nil {
									break
								}
								n, next = n+1, m.Offset+1
							}
							if err := batch.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
								b.Error(err)
								return n
							}
						}
						return n
					})
				})
			})

			b.Run("kafka-go-reader-fetchmessage", func(b *testing.B) {
				measure(b, total, func(b *testing.B) int {
					return eachPartition(benchPartitions, func(p int) int {
						r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Topic: topic, Partition: p,
							MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
						defer r.Close()
						n := 0
						for n < benchPerPart {
							if _, err := r.FetchMessage(context.Background()); err != nil {
								b.Error(err)
								return n
							}
							n++
						}
						return n
					})
				})
			})
		})
	}
}

// eachPartition runs read for partitions 0..n-1 concurrently and sums what
// they return.
func eachPartition(n int, read func(p int) int) int {
	var wg sync.WaitGroup
	counts := make([]int, n)
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[p] = read(p)
		}()
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	return total
}
