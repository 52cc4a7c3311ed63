package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

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

// BenchmarkConsume reads a 4-partition topic, one goroutine per partition
// as the engine does: through deid's Source (its own Fetch requests, values
// sliced from the response; and with kafka.record_parser: kafka-go, Conn
// batches and Batch.Read into a reused buffer), through a bare kafka-go Conn
// batch reader
// (Batch.ReadMessage, allocating each message), and through kafka-go's
// Reader (FetchMessage per record).
//
//   - synthetic: kfake serving one canned batch of 423-byte records from
//     every offset (kfake.SyntheticFetch), so the broker costs little and
//     the client's cost shows: the setting the reference speeds of
//     kafka-go's APIs were measured in;
//   - fake: kfake serving 200,000 stored events from its log (the broker,
//     in process, costs most of the CPU);
//   - real: the same against the real broker, when DEID_KAFKA_BROKERS is set.
//
// rec/cpu-s counts the whole process's CPU, so an in-process broker's share
// is included.
func BenchmarkConsume(b *testing.B) {
	b.Run("synthetic", func(b *testing.B) {
		c := kafkatest.Fake(b, kfake.SyntheticFetch(kfake.SyntheticBatch{Records: 200, RecordBytes: 423, RandomFrac: 0.5}))
		topic := kafkatest.Name(b, "bench")
		kafkatest.CreateTopic(b, c.Brokers, topic, benchPartitions, false)
		consumers(b, c, topic, 125_000)
	})
	for _, name := range []string{"fake", "real"} {
		b.Run(name, func(b *testing.B) {
			var c *kafkatest.Cluster
			if name == "fake" {
				c = kafkatest.Fake(b)
			} else {
				c = kafkatest.Real(b)
			}
			topic := kafkatest.Name(b, "bench")
			kafkatest.CreateTopic(b, c.Brokers, topic, benchPartitions, false)
			var msgs []kafkatest.Message
			for p := range int32(benchPartitions) {
				for i := range benchPerPart {
					msgs = append(msgs, kafkatest.Message{Partition: p, Value: benchEvent(int(p)*benchPerPart + i)})
				}
			}
			kafkatest.Produce(b, c.Brokers, topic, msgs)
			consumers(b, c, topic, benchPerPart)
		})
	}
}

// consumers runs the consumers over the first perPart records of each
// partition of topic.
func consumers(b *testing.B, c *kafkatest.Cluster, topic string, perPart int) {
	total := benchPartitions * perPart
	for _, parser := range []string{kafkasrc.ParserDeid, kafkasrc.ParserKafkaGo} {
		name := "deid-source"
		if parser == kafkasrc.ParserKafkaGo {
			name = "deid-source-kafka-go-parser"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b, c, topic)
			cfg.FetchMaxBytes = 4 << 20
			cfg.RecordParser = parser
			g := assign(b, newSource(b, cfg))
			zero := func(pipeline.PartitionID) (int64, bool) { return 0, true }
			measure(b, total, func(b *testing.B) int {
				rs, err := g.Open(context.Background(), zero)
				if err != nil {
					b.Fatal(err)
				}
				return eachPartition(len(rs), func(i int) int {
					defer rs[i].Close()
					n := 0
					for n < perPart {
						batch, err := rs[i].Next(context.Background())
						if err != nil {
							b.Error(err)
							return n
						}
						n += min(len(batch), perPart-n)
					}
					return n
				})
			})
		})
	}

	b.Run("kafka-go-conn-batch", func(b *testing.B) {
		measure(b, total, func(b *testing.B) int {
			return eachPartition(benchPartitions, func(p int) int {
				conn, err := kafka.DialLeader(context.Background(), "tcp", c.Brokers[0], topic, p)
				if err != nil {
					b.Error(err)
					return 0
				}
				defer conn.Close()
				n := 0
				for n < perPart {
					batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
					for n < perPart {
						if _, err := batch.ReadMessage(); err != nil {
							break
						}
						n++
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
				for n < perPart {
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

// BenchmarkProduce loads 100,000 events of about 420 bytes into a
// 4-partition topic through the Producer, as `deid gen --brokers` does.
func BenchmarkProduce(b *testing.B) {
	for _, name := range []string{"fake", "real"} {
		b.Run(name, func(b *testing.B) {
			var c *kafkatest.Cluster
			if name == "fake" {
				c = kafkatest.Fake(b)
			} else {
				c = kafkatest.Real(b)
			}
			topic := kafkatest.Name(b, "bench")
			kafkatest.CreateTopic(b, c.Brokers, topic, benchPartitions, false)
			const n = 100_000
			lines := make([][]byte, n)
			for i := range lines {
				lines[i] = benchEvent(i)
			}
			b.SetBytes(int64(len(lines[0])) * n)
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				p, err := kafkasrc.NewProducer(testConfig(b, c, topic), topic, "")
				if err != nil {
					b.Fatal(err)
				}
				for i, l := range lines {
					if err := p.Event(i%benchPartitions, nil, l); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(t0).Seconds(), "rec/s")
		})
	}
}
