package partials_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mya/deid/internal/kafkaconn"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/partials"
)

func config(c *kafkatest.Cluster) kafkaconn.Config {
	cfg := kafkaconn.DefaultConfig()
	cfg.Brokers = c.Brokers
	cfg.RetryBackoff, cfg.RetryBackoffMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	cfg.RetryBudget = 20 * time.Second
	return cfg
}

func newSink(t *testing.T, cfg kafkaconn.Config, topic string) *partials.Sink {
	t.Helper()
	s, err := partials.New(cfg, topic)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// closeRec is a close record of dataset from partition p of "events",
// closing every window up to end.
func closeRec(dataset string, p int32, end int64) pipeline.CloseRecord {
	return pipeline.CloseRecord{
		Dataset:   dataset,
		Partition: pipeline.PartitionID{Source: "events", Partition: p},
		ClosedEnd: end,
		Windows: []pipeline.ClosedWindow{{
			Window: pipeline.Window{Start: end - 3600, End: end},
			Blob:   fmt.Sprintf("partials/%s/%d/%d", dataset, p, end), SHA256: strings.Repeat("ab", 32), Events: end % 97,
		}},
		Head:       "sha256:head",
		Checkpoint: fmt.Sprintf("ckpt/events-%d/%d", p, end),
	}
}

// sent is a close record as read back from the topic.
type sent struct {
	Partition int32
	Key       string
	Rec       pipeline.CloseRecord
}

func readBack(t *testing.T, c *kafkatest.Cluster, topic string) []sent {
	t.Helper()
	var out []sent
	for _, m := range kafkatest.ReadAll(t, c.Brokers, topic) {
		r, err := pipeline.DecodeCloseRecord(m.Value)
		if err != nil {
			t.Fatalf("%s[%d]@%d: %v", topic, m.Partition, m.Offset, err)
		}
		out = append(out, sent{m.Partition, string(m.Key), *r})
	}
	return out
}

// byDataset groups what was read by key, in offset order, checking that
// each dataset stays on one partition.
func byDataset(t *testing.T, got []sent) map[string][]pipeline.CloseRecord {
	t.Helper()
	parts := map[string]int32{}
	out := map[string][]pipeline.CloseRecord{}
	for _, s := range got {
		if p, ok := parts[s.Key]; ok && p != s.Partition {
			t.Errorf("dataset %q on partitions %d and %d, want one", s.Key, p, s.Partition)
		}
		parts[s.Key] = s.Partition
		if s.Key != s.Rec.Dataset {
			t.Errorf("key %q for a record of dataset %q", s.Key, s.Rec.Dataset)
		}
		out[s.Key] = append(out[s.Key], s.Rec)
	}
	return out
}

func TestSendKeysRecordsByDatasetInOrderAckedByAllReplicas(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "partials")
		kafkatest.CreateTopic(t, c.Brokers, topic, 4, false)
		s := newSink(t, config(c), topic)
		if err := s.Check(ctxT(t)); err != nil {
			t.Fatalf("Check of an existing topic: %v", err)
		}
		var (
			mu   sync.Mutex
			acks []int16
		)
		if c.IsFake() {
			h := c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Observe: true, Count: -1,
				When: func(r kmsg.Request) bool {
					mu.Lock()
					defer mu.Unlock()
					acks = append(acks, r.(*kmsg.ProduceRequest).Acks)
					return true
				}})
			defer h.Remove()
		}
		want := map[string][]pipeline.CloseRecord{}
		for round := range int64(3) {
			var recs []pipeline.CloseRecord
			for _, ds := range []string{"activity", "campaigns", "audience", "retention", "spend"} {
				for p := range int32(2) {
					r := closeRec(ds, p, 3600*(round+1))
					recs = append(recs, r)
					r.Version = pipeline.CloseRecordVersion
					want[ds] = append(want[ds], r)
				}
			}
			if err := s.Send(ctxT(t), recs); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if recs[0].Version != 0 {
				t.Errorf("Send changed the caller's records")
			}
		}
		if diff := gocmp.Diff(want, byDataset(t, readBack(t, c, topic))); diff != "" {
			t.Errorf("close records by dataset (-want +got):\n%s", diff)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range acks {
			if a != -1 {
				t.Errorf("a produce asked for acks=%d, want all in-sync replicas (-1)", a)
			}
		}
		if c.IsFake() && len(acks) == 0 {
			t.Error("no produce request was seen")
		}
	})
}

func TestCheckNamesAMissingTopicAndHowToCreateIt(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "partials")
		err := newSink(t, config(c), topic).Check(ctxT(t))
		brokers := strings.Join(c.Brokers, ",")
		want := fmt.Sprintf("kafka: the partials topic %q does not exist on %s; create it like every topic "+
			"(kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions 1 --replication-factor 3) or set kafka.partials_topic",
			topic, brokers, brokers, topic)
		if err == nil || err.Error() != want {
			t.Errorf("Check = %v\nwant %s", err, want)
		}
	})
}

func TestNewRefusesABadTopicName(t *testing.T) {
	cfg := kafkaconn.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	_, err := partials.New(cfg, "deid partials")
	want := `kafka.partials_topic: topic name "deid partials" may only contain ASCII letters, digits, '.', '_' and '-'`
	if err == nil || err.Error() != want {
		t.Errorf("New = %v, want %s", err, want)
	}
}

func TestTransientFailuresAreRetriedAndEachDatasetKeepsItsOrder(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "partials")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	s := newSink(t, config(c), topic)
	// More records than one batch holds: the first batch fails every
	// attempt kafka-go makes, the second goes through, so the first is
	// sent again after the second.
	var recs []pipeline.CloseRecord
	for i := range int64(1500) {
		recs = append(recs, closeRec("activity", 0, 3600*(i+1)))
	}
	h := c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: 3})
	if err := s.Send(ctxT(t), recs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if h.Hits() != 3 {
		t.Fatalf("%d produces failed, want 3", h.Hits())
	}
	// Read as the publisher does: the copy read last counts. Every record
	// is there, and the last copies are in the order sent.
	got := byDataset(t, readBack(t, c, topic))["activity"]
	last := map[int64]int{}
	for i, r := range got {
		last[r.ClosedEnd] = i
	}
	if len(last) != len(recs) {
		t.Fatalf("%d distinct records read, want %d", len(last), len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if last[recs[i].ClosedEnd] < last[recs[i-1].ClosedEnd] {
			t.Fatalf("the last copy of record %d comes before the last copy of record %d", i, i-1)
		}
	}
}

func TestAFailureRetryingCannotFixOrOutlastingTheBudgetIsReturned(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    *kerr.Error
		budget time.Duration
		want   error
		says   string
	}{
		{"an authorization failure is returned at once", kerr.TopicAuthorizationFailed, time.Minute, kafka.TopicAuthorizationFailed, ": 1 of 1 records failed, the first: [29]"},
		{"a transient failure is returned after the budget", kerr.NotLeaderForPartition, 300 * time.Millisecond, kafka.NotLeaderForPartition, "still failing after"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkatest.Fake(t)
			topic := kafkatest.Name(t, "partials")
			kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
			cfg := config(c)
			cfg.RetryBudget = tt.budget
			s := newSink(t, cfg, topic)
			c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: tt.err, Count: -1})
			start := time.Now()
			err := s.Send(ctxT(t), []pipeline.CloseRecord{closeRec("activity", 0, 3600)})
			prefix := fmt.Sprintf("partials: producing 1 close records to %q on %s: ", topic, c.Brokers[0])
			if err == nil || !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Send = %v\nwant %v, starting %q, saying %q", err, tt.want, prefix, tt.says)
			}
			if d := time.Since(start); d > tt.budget+10*time.Second {
				t.Errorf("Send took %s", d)
			}
		})
	}
}

func TestSendAfterCloseFailsAtOnce(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "partials")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	s := newSink(t, config(c), topic)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	start := time.Now()
	err := s.Send(ctxT(t), []pipeline.CloseRecord{closeRec("activity", 0, 3600)})
	want := fmt.Sprintf("partials: sending to %q: the sink is closed", topic)
	if err == nil || err.Error() != want {
		t.Errorf("Send after Close = %v, want %s", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send after Close took %s, want an answer at once", d)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
