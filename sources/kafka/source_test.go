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
	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

func sortRecs(rs []rec) []rec {
	slices.SortFunc(rs, func(a, b rec) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return rs
}

func counts(rs []rec) map[int32]int {
	n := map[int32]int{}
	for _, r := range rs {
		n[r.Partition]++
	}
	return n
}

func TestSourceReadsEveryRecordOnceInOffsetOrder(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 3, false)
		var msgs []kafkatest.Message
		for p := range int32(3) {
			msgs = append(msgs, kafkatest.Values(p, fmt.Sprintf("p%d", p), 150+50*int(p))...)
		}
		// A tombstone and an empty value are records too: the engine
		// dead-letters them.
		msgs = append(msgs, kafkatest.Message{Partition: 1}, kafkatest.Message{Partition: 1, Value: []byte{}},
			kafkatest.Message{Partition: 1, Value: []byte("after-the-tombstone")})
		want := sortRecs(recsOf(produceInBatches(t, c.Brokers, topic, msgs, 40)))

		cfg := testConfig(t, c, topic)
		cfg.FetchMaxBytes = 2048 // several fetches per partition
		g := assign(t, newSource(t, cfg))
		wantParts := []pipeline.PartitionID{{Source: topic, Partition: 0}, {Source: topic, Partition: 1}, {Source: topic, Partition: 2}}
		if diff := gocmp.Diff(wantParts, g.Partitions()); diff != "" {
			t.Fatalf("partitions (-want +got):\n%s", diff)
		}
		n := counts(want)
		var got []rec
		for _, r := range open(t, g, nil) {
			got = append(got, readN(t, r, n[r.ID().Partition])...)
			// A Kafka source never ends: Next waits for more.
			expectBlocks(t, r, 300*time.Millisecond)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
}

func TestStopAtEndReadsUpToTheHighWaterMarkAtOpen(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 3, false)
		want := sortRecs(recsOf(produceInBatches(t, c.Brokers, topic,
			append(kafkatest.Values(0, "a", 40), kafkatest.Values(1, "b", 7)...), 10)))
		cfg := testConfig(t, c, topic)
		cfg.FetchMaxBytes = 1024
		rs := open(t, assign(t, newSource(t, cfg, kafkasrc.StopAtEnd())), nil)
		// Records produced after Open are past the end.
		kafkatest.Produce(t, c.Brokers, topic, append(kafkatest.Values(0, "late", 5), kafkatest.Values(2, "late", 5)...))
		var got []rec
		for _, r := range rs {
			got = append(got, readToEOF(t, r)...)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
}

func TestCommitIsVisibleInTheGroupAndOpenResumes(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 3, false)
		all := sortRecs(recsOf(kafkatest.Produce(t, c.Brokers, topic,
			slices.Concat(kafkatest.Values(0, "a", 20), kafkatest.Values(1, "b", 20), kafkatest.Values(2, "c", 20)))))
		cfg := testConfig(t, c, topic)

		first := newSource(t, cfg)
		g := assign(t, first)
		commit := map[pipeline.PartitionID]pipeline.Committed{{Source: topic, Partition: 0}: {Next: 7}, {Source: topic, Partition: 1}: {Next: 3}}
		if err := g.Commit(ctxT(t), commit); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if diff := gocmp.Diff(map[int32]int64{0: 7, 1: 3}, kafkatest.Committed(t, c.Brokers, cfg.Group, topic)); diff != "" {
			t.Fatalf("committed offsets (-want +got):\n%s", diff)
		}
		first.Close()

		// The checkpoint (resume) wins over the group's offset; without
		// one the group's offset counts; without either, the earliest.
		second := newSource(t, cfg)
		resume := func(id pipeline.PartitionID) (int64, bool) { return 12, id.Partition == 1 }
		var got []rec
		for _, r := range open(t, assign(t, second), resume) {
			got = append(got, readN(t, r, map[int32]int{0: 13, 1: 8, 2: 20}[r.ID().Partition])...)
		}
		want := slices.DeleteFunc(slices.Clone(all), func(r rec) bool {
			return r.Partition == 0 && r.Offset < 7 || r.Partition == 1 && r.Offset < 12
		})
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
}

func TestRebalanceEndsTheGenerationAndSharesThePartitions(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 4, false)
		kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 10))
		cfg := testConfig(t, c, topic)

		a := newSource(t, cfg)
		ga := assign(t, a)
		if n := len(ga.Partitions()); n != 4 {
			t.Fatalf("the only member has %d partitions, want 4", n)
		}
		ra := open(t, ga, nil)
		readN(t, ra[0], 10)

		b := newSource(t, cfg)
		type result struct {
			g   pipeline.Generation
			err error
		}
		joined := make(chan result, 1)
		go func() {
			g, err := b.Assign(ctxT(t))
			joined <- result{g, err}
		}()
		select {
		case <-ga.Done():
		case <-time.After(kafkatest.Timeout):
			t.Fatal("the generation did not end when a second member joined")
		}
		if _, err := ra[0].Next(ctxT(t)); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
			t.Errorf("Next after the generation ended = %v, want ErrGenerationEnded", err)
		}
		// The engine checkpoints, then commits: the member holds the
		// group's next join until it releases the generation (the next
		// Assign), so the coordinator still takes the commit of the
		// generation that ended, and the partition's next owner resumes
		// from it rather than reading it again.
		if err := ga.Fence(ctxT(t)); err != nil {
			t.Errorf("Fence after the generation ended, before it is released = %v, want nil (a rebalance in progress)", err)
		}
		if err := ga.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{{Source: topic, Partition: 0}: {Next: 10}}); err != nil {
			t.Errorf("Commit after the generation ended, before it is released = %v, want it taken", err)
		}
		ga2 := assign(t, a)
		rb := <-joined
		if rb.err != nil {
			t.Fatalf("second member: Assign: %v", rb.err)
		}
		pa, pb := ga2.Partitions(), rb.g.Partitions()
		if len(pa) == 0 || len(pb) == 0 {
			t.Fatalf("partitions %v and %v: want both members to get some", pa, pb)
		}
		all := slices.SortedFunc(slices.Values(slices.Concat(pa, pb)), func(x, y pipeline.PartitionID) int { return cmp.Compare(x.Partition, y.Partition) })
		want := []pipeline.PartitionID{{Source: topic, Partition: 0}, {Source: topic, Partition: 1}, {Source: topic, Partition: 2}, {Source: topic, Partition: 3}}
		if diff := gocmp.Diff(want, all); diff != "" {
			t.Errorf("partitions of both members (-want +got):\n%s", diff)
		}
	})
}

func TestAnOffsetNoLongerOnTheBrokerIsAnErrorUnlessConfigured(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
		kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 10))
		resume := func(pipeline.PartitionID) (int64, bool) { return 50, true }

		cfg := testConfig(t, c, topic)
		g := assign(t, newSource(t, cfg))
		_, err := g.Open(ctxT(t), resume)
		if err == nil || !errors.Is(err, kafka.OffsetOutOfRange) ||
			!strings.Contains(err.Error(), fmt.Sprintf("%s[0] (leader 127.0.0.1:", topic)) ||
			!strings.Contains(err.Error(), "offset 50 is out of range [0, 10]") {
			t.Fatalf("Open at offset 50 of 10 = %v, want an out-of-range error naming the partition, broker and range", err)
		}

		for policy, wantFirst := range map[string]string{kafkasrc.OutOfRangeEarliest: "a-0", kafkasrc.OutOfRangeLatest: "b-0"} {
			cfg := testConfig(t, c, topic)
			cfg.OffsetOutOfRange = policy
			rs := open(t, assign(t, newSource(t, cfg)), resume)
			if policy == kafkasrc.OutOfRangeLatest {
				kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "b", 1))
			}
			batch, err := rs[0].Next(ctxT(t))
			if err != nil {
				t.Fatalf("offset_out_of_range: %s: Next: %v", policy, err)
			}
			if got := string(batch[0].Value); got != wantFirst {
				t.Errorf("offset_out_of_range: %s: first record %q, want %q", policy, got, wantFirst)
			}
		}
	})
}

func TestFetchErrorsAreRetriedWithoutLossOrDuplicates(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
	want := sortRecs(recsOf(produceInBatches(t, c.Brokers, topic, append(kafkatest.Values(0, "a", 100), kafkatest.Values(1, "b", 100)...), 10)))
	cfg := testConfig(t, c, topic)
	cfg.FetchMaxBytes = 1024
	rs := open(t, assign(t, newSource(t, cfg)), nil)

	// The first few fetches fail as while a leader moves.
	h := c.FailFetches(t, topic, 6, kerr.NotLeaderForPartition)
	var got []rec
	for _, r := range rs {
		got = append(got, readN(t, r, 100)...)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if h.Hits() != 6 {
		t.Errorf("%d fetches failed, want 6", h.Hits())
	}
}

func TestAFetchErrorRetryingCannotFixIsReturnedClearly(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 5))
	rs := open(t, assign(t, newSource(t, testConfig(t, c, topic))), nil)

	c.FailFetches(t, topic, -1, kerr.TopicAuthorizationFailed)
	_, err := rs[0].Next(ctxT(t))
	want := fmt.Sprintf("kafka: %s[0] (leader %s): reading at offset 0: [29] Topic Authorization Failed", topic, c.Brokers[0])
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Errorf("Next = %v\nwant an error starting %q", err, want)
	}
}

func TestAFailureOutlastingTheRetryBudgetIsReturned(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 5))
	cfg := testConfig(t, c, topic)
	cfg.RetryBudget = 300 * time.Millisecond
	rs := open(t, assign(t, newSource(t, cfg)), nil)

	c.FailFetches(t, topic, -1, kerr.NotLeaderForPartition)
	_, err := rs[0].Next(ctxT(t))
	if err == nil || !errors.Is(err, kafka.NotLeaderForPartition) || !strings.Contains(err.Error(), "still failing after") ||
		!strings.Contains(err.Error(), topic+"[0]") {
		t.Errorf("Next = %v, want the last failure after the retry budget, naming the partition", err)
	}
}

func TestCommitErrorsAreReturnedClearly(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	cfg := testConfig(t, c, topic)
	g := assign(t, newSource(t, cfg))
	next := map[pipeline.PartitionID]pipeline.Committed{{Source: topic, Partition: 0}: {Next: 3}}

	c.FailCommits(t, cfg.Group, 1, kerr.OffsetMetadataTooLarge)
	err := g.Commit(ctxT(t), next)
	if err == nil || !errors.Is(err, kafka.OffsetMetadataTooLarge) ||
		!strings.HasPrefix(err.Error(), fmt.Sprintf("kafka: committing offsets of group %q (generation ", cfg.Group)) {
		t.Errorf("Commit = %v, want the broker's error naming the group", err)
	}

	c.FailCommits(t, cfg.Group, 1, kerr.IllegalGeneration)
	if err := g.Commit(ctxT(t), next); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
		t.Errorf("Commit refused for its generation = %v, want ErrGenerationEnded", err)
	}

	if err := g.Commit(ctxT(t), next); err != nil {
		t.Fatalf("Commit once the faults are spent: %v", err)
	}
	if diff := gocmp.Diff(map[int32]int64{0: 3}, kafkatest.Committed(t, c.Brokers, cfg.Group, topic)); diff != "" {
		t.Errorf("committed (-want +got):\n%s", diff)
	}
}

func TestReaderFollowsTheLeaderToAnotherBroker(t *testing.T) {
	c := kafkatest.Fake(t, kfake.NumBrokers(2))
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	want := recsOf(kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 30)))
	cfg := testConfig(t, c, topic)
	watch := newLogWatch(t)
	rs := open(t, assign(t, newSource(t, cfg, kafkasrc.WithLogger(watch.log))), nil)
	got := readN(t, rs[0], 30)

	k := c.Kfake(t)
	leader := k.LeaderFor(topic, 0)
	if err := k.MoveTopicPartition(topic, 0, 1-leader); err != nil {
		t.Fatal(err)
	}
	want = append(want, recsOf(kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "b", 30)))...)
	got = append(got, readN(t, rs[0], 30)...)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	watch.wait(t, "reading the partition failed; retrying")
}

// TestSourceSurvivesABrokerRestart drives the source as the engine does: on
// ErrGenerationEnded it joins the next generation and reopens its
// partitions at the positions it had reached. A short outage is ridden out
// by the readers in place; a longer one ends the generation (the heartbeat
// fails) and the group is joined again once the broker is back.
func TestSourceSurvivesABrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a broker restart; not with -short")
	}
	for _, tt := range []struct {
		name            string
		outlastSession  bool
		wantGenerations int
	}{
		{"a short outage is retried in place", false, 1},
		{"a longer outage ends the generation and the group is joined again", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkatest.Fake(t)
			topic := kafkatest.Name(t, "events")
			kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
			want := sortRecs(recsOf(produceInBatches(t, c.Brokers, topic, append(kafkatest.Values(0, "a", 200), kafkatest.Values(1, "b", 200)...), 10)))
			cfg := testConfig(t, c, topic)
			cfg.FetchMaxBytes = 1024
			if !tt.outlastSession {
				cfg.SessionTimeout = 30 * time.Second // a heartbeat every 3s: none during the outage
			}
			watch := newLogWatch(t)
			src := newSource(t, cfg, kafkasrc.WithLogger(watch.log))
			ctx := ctxT(t)

			got := map[int32][]rec{}
			next := map[pipeline.PartitionID]int64{}
			restarted, back := false, make(chan struct{})
			generations := 0
			for ; len(got[0])+len(got[1]) < len(want); generations++ {
				if generations > 10 {
					t.Fatalf("%d generations and still not done", generations)
				}
				g, err := src.Assign(ctx)
				if err != nil {
					t.Fatalf("Assign: %v", err)
				}
				rs, err := g.Open(ctx, func(id pipeline.PartitionID) (int64, bool) { n, ok := next[id]; return n, ok })
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
			read:
				for len(got[0])+len(got[1]) < len(want) {
					for _, r := range rs {
						p := r.ID().Partition
						if len(got[p]) == 200 {
							continue
						}
						batch, err := r.Next(ctx)
						if errors.Is(err, kafkasrc.ErrGenerationEnded) {
							break read
						}
						if err != nil {
							t.Fatalf("Next: %v", err)
						}
						for _, b := range batch {
							got[p] = append(got[p], rec{p, b.Pos.Offset, string(b.Value)})
							next[r.ID()] = b.Pos.Offset + 1
						}
						if !restarted && len(got[0]) > 0 && len(got[1]) > 0 {
							restarted = true
							c.Stop(t)
							go func() {
								defer close(back)
								watch.wait(t, "warn") // a reader noticed the broker is gone
								if tt.outlastSession {
									<-g.Done() // the heartbeat failed
								}
								c.Start(t)
							}()
						}
					}
				}
				for _, r := range rs {
					r.Close()
				}
			}
			if diff := gocmp.Diff(want, append(got[0], got[1]...)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if !restarted {
				t.Fatal("the broker was never stopped")
			}
			<-back
			if generations != tt.wantGenerations {
				t.Errorf("%d generations, want %d", generations, tt.wantGenerations)
			}
		})
	}
}

func TestAssignRespectsTheContext(t *testing.T) {
	// Nothing listens here: joining keeps failing until ctx ends.
	cfg := kafkasrc.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.RetryBackoff, cfg.RetryBackoffMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.DialTimeout = 100 * time.Millisecond
	s := newSource(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.Assign(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Assign = %v, want context.DeadlineExceeded", err)
	}

	cfg.RetryBudget = 200 * time.Millisecond
	s = newSource(t, cfg)
	_, err := s.Assign(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), `joining consumer group "deid" on 127.0.0.1:1: still failing after`) {
		t.Errorf("Assign = %v, want the failure after the retry budget", err)
	}
}

// The worker decodes a batch while it gates the one before, so a batch must
// stay intact while the next one is read (PartitionReader's contract).
func TestABatchStaysValidWhileTheNextIsRead(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	want := recsOf(produceInBatches(t, c.Brokers, topic, kafkatest.Values(0, "v", 200), 20))
	cfg := testConfig(t, c, topic)
	cfg.FetchMaxBytes = 1024 // many fetches, each filling the buffer
	r := open(t, assign(t, newSource(t, cfg)), nil)[0]
	ctx := ctxT(t)
	var prev []pipeline.Record
	var prevWant []rec
	var got []rec
	for len(got) < len(want) {
		batch, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(got), err)
		}
		// The previous batch, read again after this Next.
		for i, p := range prev {
			if string(p.Value) != prevWant[i].Value || p.Pos.Offset != prevWant[i].Offset {
				t.Fatalf("reading a batch changed the one before: offset %d holds %q, want %q",
					p.Pos.Offset, p.Value, prevWant[i].Value)
			}
		}
		prevWant = prevWant[:0]
		for _, b := range batch {
			rc := rec{b.Pos.Partition, b.Pos.Offset, string(b.Value)}
			got, prevWant = append(got, rc), append(prevWant, rc)
		}
		prev = batch
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
