package kafka_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// feedConfig returns a configuration whose partials topic is a fresh one
// with the given partitions (none: not created).
func feedConfig(t *testing.T, c *kafkatest.Cluster, partitions int) kafkasrc.Config {
	t.Helper()
	cfg := testConfig(t, c, kafkatest.Name(t, "events"))
	cfg.PartialsTopic = kafkatest.Name(t, "partials")
	if partitions > 0 {
		kafkatest.CreateTopic(t, c.Brokers, cfg.PartialsTopic, partitions, false)
	}
	return cfg
}

func newFeed(t *testing.T, cfg kafkasrc.Config) *kafkasrc.Feed {
	t.Helper()
	f, err := kafkasrc.NewFeed(cfg)
	if err != nil {
		t.Fatalf("NewFeed: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func assignFeed(t *testing.T, f *kafkasrc.Feed) pipeline.FeedGeneration {
	t.Helper()
	g, err := f.Assign(ctxT(t))
	if err != nil {
		t.Fatalf("Assign: %v", err)
	}
	return g
}

// closeRecord is a close record of dataset from events partition p.
func closeRecord(dataset string, p int32, end int64) pipeline.CloseRecord {
	return pipeline.CloseRecord{Version: pipeline.CloseRecordVersion, Dataset: dataset,
		Partition: pipeline.PartitionID{Source: "events", Partition: p}, ClosedEnd: end,
		Checkpoint: fmt.Sprintf("ckpt/events-%d/%d", p, end)}
}

// fed is a close record with its position, as Next returns them.
type fed struct {
	Pos pipeline.FeedPosition
	Rec pipeline.CloseRecord
}

// produceCloses produces recs to partition p of topic, keyed by dataset.
func produceCloses(t *testing.T, c *kafkatest.Cluster, topic string, p int32, recs ...pipeline.CloseRecord) []fed {
	t.Helper()
	msgs := make([]kafkatest.Message, len(recs))
	for i := range recs {
		v, err := pipeline.EncodeCloseRecord(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafkatest.Message{Partition: p, Key: []byte(recs[i].Dataset), Value: v}
	}
	var out []fed
	for i, m := range kafkatest.Produce(t, c.Brokers, topic, msgs) {
		out = append(out, fed{pipeline.FeedPosition{Partition: p, Offset: m.Offset}, recs[i]})
	}
	return out
}

// nextN reads n close records from g, in the order of their positions.
func nextN(t *testing.T, g pipeline.FeedGeneration, n int) []fed {
	t.Helper()
	var out []fed
	last := map[int32]int64{}
	for len(out) < n {
		rec, pos, err := g.Next(ctxT(t))
		if err != nil {
			t.Fatalf("Next after %d of %d records: %v", len(out), n, err)
		}
		if prev, ok := last[pos.Partition]; ok && pos.Offset <= prev {
			t.Fatalf("partition %d: offset %d after %d", pos.Partition, pos.Offset, prev)
		}
		last[pos.Partition] = pos.Offset
		out = append(out, fed{pos, *rec})
	}
	slices.SortFunc(out, func(a, b fed) int {
		return cmp.Or(cmp.Compare(a.Pos.Partition, b.Pos.Partition), cmp.Compare(a.Pos.Offset, b.Pos.Offset))
	})
	return out
}

// expectNothing checks that Next has nothing to return within d.
func expectNothing(t *testing.T, g pipeline.FeedGeneration, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if rec, pos, err := g.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v at %v, %v; want it to block until the context ends", rec, pos, err)
	}
}

func TestTheFeedReadsEveryCloseRecordFromTheCommittedOffset(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := feedConfig(t, c, 2)
		topic := cfg.Partials()
		want := slices.Concat(
			produceCloses(t, c, topic, 0, closeRecord("activity", 0, 3600), closeRecord("activity", 1, 3600), closeRecord("activity", 0, 7200)),
			produceCloses(t, c, topic, 1, closeRecord("spend", 2, 3600), closeRecord("spend", 2, 7200)))

		f := newFeed(t, cfg)
		if f.Topic() != topic || f.Group() != cfg.Group+".publish" {
			t.Errorf("topic %q, group %q: want %q and <group>.publish", f.Topic(), f.Group(), topic)
		}
		g := assignFeed(t, f)
		if diff := gocmp.Diff([]int32{0, 1}, g.Partitions()); diff != "" {
			t.Fatalf("partitions (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(want, nextN(t, g, len(want))); diff != "" {
			t.Fatalf("close records (-want +got):\n%s", diff)
		}
		expectNothing(t, g, 300*time.Millisecond)
		// Records that arrive later are read too.
		later := produceCloses(t, c, topic, 1, closeRecord("spend", 2, 10800))
		if diff := gocmp.Diff(later, nextN(t, g, 1)); diff != "" {
			t.Fatalf("a later close record (-want +got):\n%s", diff)
		}

		// The publisher commits where a restart must read again.
		if err := g.Commit(ctxT(t), map[int32]int64{0: 2, 1: 1}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if diff := gocmp.Diff(map[int32]int64{0: 2, 1: 1}, kafkatest.Committed(t, c.Brokers, f.Group(), topic)); diff != "" {
			t.Fatalf("committed (-want +got):\n%s", diff)
		}
		f.Close()
		select {
		case <-g.Done():
		case <-time.After(kafkatest.Timeout):
			t.Fatal("closing the feed did not end its generation")
		}
		if _, _, err := g.Next(ctxT(t)); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
			t.Errorf("Next after Close = %v, want ErrGenerationEnded", err)
		}

		g2 := assignFeed(t, newFeed(t, cfg))
		again := []fed{want[2], want[4], later[0]}
		if diff := gocmp.Diff(again, nextN(t, g2, len(again))); diff != "" {
			t.Errorf("close records after a restart (-want +got):\n%s", diff)
		}
		expectNothing(t, g2, 300*time.Millisecond)
	})
}

func TestACloseRecordThatDoesNotDecodeStopsTheFeedNamingIt(t *testing.T) {
	c := kafkatest.Fake(t)
	cfg := feedConfig(t, c, 1)
	topic := cfg.Partials()
	good := produceCloses(t, c, topic, 0, closeRecord("activity", 0, 3600))
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{
		{Key: []byte("activity"), Value: []byte(`{"version":1,"dataset":"activity","partition":`)},
		{Key: []byte("activity"), Value: []byte(`{"version":9,"dataset":"activity","partition":{"source":"events"}}`)},
	})
	produceCloses(t, c, topic, 0, closeRecord("activity", 0, 7200))

	g := assignFeed(t, newFeed(t, cfg))
	if diff := gocmp.Diff(good, nextN(t, g, 1)); diff != "" {
		t.Fatalf("the record before (-want +got):\n%s", diff)
	}
	rec, pos, err := g.Next(ctxT(t))
	want := fmt.Sprintf("kafka: partials topic %q, partition 0, offset 1: close record: ", topic)
	if err == nil || !strings.HasPrefix(err.Error(), want) || rec != nil || pos != (pipeline.FeedPosition{Partition: 0, Offset: 1}) {
		t.Fatalf("Next = %v at %v, %v\nwant an error starting %q at 0@1", rec, pos, err, want)
	}
	// Nothing after it is handed out: the publisher must not go on
	// without it.
	expectNothing(t, g, 300*time.Millisecond)
}

func TestTheFeedNamesAMissingPartialsTopicAndHowToCreateIt(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := feedConfig(t, c, 0)
		b := strings.Join(c.Brokers, ",")
		want := fmt.Sprintf("kafka: the partials topic %q does not exist on %s; create it like every topic "+
			"(kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions 1 --replication-factor 3) or set kafka.partials_topic",
			cfg.Partials(), b, b, cfg.Partials())
		f := newFeed(t, cfg)
		if err := f.Check(ctxT(t)); err == nil || err.Error() != want {
			t.Errorf("Check = %v\nwant %s", err, want)
		}
		if _, err := f.Assign(ctxT(t)); err == nil || err.Error() != want {
			t.Errorf("Assign = %v\nwant %s", err, want)
		}
	})
}

func TestAFeedGenerationTheGroupLeftIsRefusedItsCommit(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := feedConfig(t, c, 2)
		topic := cfg.Partials()
		produceCloses(t, c, topic, 0, closeRecord("activity", 0, 3600))
		a := newFeed(t, cfg)
		ga := assignFeed(t, a)
		nextN(t, ga, 1)
		if err := ga.Commit(ctxT(t), map[int32]int64{0: 1}); err != nil {
			t.Fatalf("Commit: %v", err)
		}

		b := newFeed(t, cfg)
		joined := make(chan pipeline.FeedGeneration, 1)
		go func() {
			g, err := b.Assign(ctxT(t))
			if err != nil {
				t.Errorf("second member: Assign: %v", err)
			}
			joined <- g
		}()
		select {
		case <-ga.Done():
		case <-time.After(kafkatest.Timeout):
			t.Fatal("the generation did not end when a second member joined")
		}
		if _, _, err := ga.Next(ctxT(t)); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
			t.Errorf("Next after the generation ended = %v, want ErrGenerationEnded", err)
		}
		ga2 := assignFeed(t, a)
		gb := <-joined
		if gb == nil {
			t.FailNow()
		}
		if n := len(ga2.Partitions()) + len(gb.Partitions()); n != 2 {
			t.Errorf("partitions %v and %v, want the two shared", ga2.Partitions(), gb.Partitions())
		}
		if err := ga.Commit(ctxT(t), map[int32]int64{0: 7}); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
			t.Errorf("Commit of the generation the group left = %v, want ErrGenerationEnded", err)
		}
		if diff := gocmp.Diff(map[int32]int64{0: 1}, kafkatest.Committed(t, c.Brokers, a.Group(), topic)); diff != "" {
			t.Errorf("committed (-want +got):\n%s", diff)
		}
	})
}
