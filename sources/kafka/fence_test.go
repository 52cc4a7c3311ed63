package kafka_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// joinSecond starts a second member of cfg's group, waits until the first
// member's generation ga has ended, lets the first member join again, and
// returns both members' new generations.
func joinSecond(t *testing.T, a *kafkasrc.Source, ga pipeline.Generation, cfg kafkasrc.Config) (pipeline.Generation, pipeline.Generation) {
	t.Helper()
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
	ga2 := assign(t, a)
	rb := <-joined
	if rb.err != nil {
		t.Fatalf("second member: Assign: %v", rb.err)
	}
	if ga2.ID() <= ga.ID() || rb.g.ID() != ga2.ID() {
		t.Fatalf("generations %d, then %d and %d: want one newer generation for both members", ga.ID(), ga2.ID(), rb.g.ID())
	}
	return ga2, rb.g
}

func TestTheCheckpointNameCommittedWithAnOffsetReachesTheNextGeneration(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
		kafkatest.Produce(t, c.Brokers, topic, append(kafkatest.Values(0, "a", 10), kafkatest.Values(1, "b", 10)...))
		cfg := testConfig(t, c, topic)
		p0, p1 := pipeline.PartitionID{Source: topic, Partition: 0}, pipeline.PartitionID{Source: topic, Partition: 1}

		a := newSource(t, cfg)
		ga := assign(t, a)
		for _, id := range ga.Partitions() {
			if got := ga.Committed(id); got != "" {
				t.Errorf("%s: Committed in a new group = %q, want none", id, got)
			}
		}
		commit := map[pipeline.PartitionID]pipeline.Committed{
			p0: {Next: 7, Checkpoint: "ckpt/events-0/7-1"},
			p1: {Next: 4, Checkpoint: "ckpt/events-1/4-1"},
		}
		if err := ga.Commit(ctxT(t), commit); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		want := map[int32]kafkatest.Commit{0: {Offset: 7, Metadata: "ckpt/events-0/7-1"}, 1: {Offset: 4, Metadata: "ckpt/events-1/4-1"}}
		if diff := gocmp.Diff(want, kafkatest.Commits(t, c.Brokers, cfg.Group, topic)); diff != "" {
			t.Fatalf("committed (-want +got):\n%s", diff)
		}

		// A second member joins: one partition stays, the other moves.
		// Each owner finds the checkpoint's name as soon as it is assigned,
		// before it opens the partition (it loads the checkpoint first).
		ga2, gb := joinSecond(t, a, ga, cfg)
		got := map[pipeline.PartitionID]string{}
		for _, g := range []pipeline.Generation{ga2, gb} {
			if len(g.Partitions()) != 1 {
				t.Fatalf("partitions %v: want one per member", g.Partitions())
			}
			for _, id := range g.Partitions() {
				got[id] = g.Committed(id)
			}
		}
		wantNames := map[pipeline.PartitionID]string{p0: "ckpt/events-0/7-1", p1: "ckpt/events-1/4-1"}
		if diff := gocmp.Diff(wantNames, got); diff != "" {
			t.Errorf("Committed in the next generation (-want +got):\n%s", diff)
		}
		// Opened without a checkpoint of its own, a partition starts at the
		// committed offset, and the name stays.
		for _, g := range []pipeline.Generation{ga2, gb} {
			for _, r := range open(t, g, nil) {
				recs := readN(t, r, map[int32]int{0: 3, 1: 6}[r.ID().Partition])
				if first := recs[0].Offset; first != commit[r.ID()].Next {
					t.Errorf("%s: first offset %d, want the committed %d", r.ID(), first, commit[r.ID()].Next)
				}
				if got := g.Committed(r.ID()); got != wantNames[r.ID()] {
					t.Errorf("%s: Committed after Open = %q, want %q", r.ID(), got, wantNames[r.ID()])
				}
			}
		}
	})
}

func TestAStaleGenerationIsFencedAndItsCommitsChangeNothing(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "events")
		kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
		cfg := testConfig(t, c, topic)
		p0 := pipeline.PartitionID{Source: topic, Partition: 0}

		a := newSource(t, cfg)
		ga := assign(t, a)
		if err := ga.Fence(ctxT(t)); err != nil {
			t.Fatalf("Fence of the current generation = %v, want nil", err)
		}
		if err := ga.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{p0: {Next: 5, Checkpoint: "ckpt/a/5"}}); err != nil {
			t.Fatalf("Commit: %v", err)
		}

		ga2, gb := joinSecond(t, a, ga, cfg)
		if err := ga.Fence(ctxT(t)); !errors.Is(err, kafkasrc.ErrGenerationEnded) || !pipeline.Fenced(err) {
			t.Errorf("Fence of the generation the group left = %v, want ErrGenerationEnded", err)
		}
		err := ga.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{p0: {Next: 9, Checkpoint: "ckpt/a/9-stale"}})
		if !errors.Is(err, kafkasrc.ErrGenerationEnded) {
			t.Errorf("Commit of the generation the group left = %v, want ErrGenerationEnded", err)
		}
		if diff := gocmp.Diff(map[int32]kafkatest.Commit{0: {Offset: 5, Metadata: "ckpt/a/5"}}, kafkatest.Commits(t, c.Brokers, cfg.Group, topic)); diff != "" {
			t.Errorf("committed after the refused commit (-want +got):\n%s", diff)
		}
		for name, g := range map[string]pipeline.Generation{"the first member": ga2, "the second member": gb} {
			if err := g.Fence(ctxT(t)); err != nil {
				t.Errorf("Fence of %s in the new generation = %v, want nil", name, err)
			}
		}
	})
}

// isolateGroup makes the fake cluster swallow group's membership requests
// (joins, syncs, heartbeats, leaves, commits) while *cut is true, as if the
// member's process were stopped: kafka-go's requests go unanswered.
func isolateGroup(t *testing.T, c *kafkatest.Cluster, group string, cut *atomic.Bool) {
	k := c.Kfake(t)
	k.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		if !cut.Load() {
			return nil, nil, false
		}
		var g string
		switch r := req.(type) {
		case *kmsg.HeartbeatRequest:
			g = r.Group
		case *kmsg.JoinGroupRequest:
			g = r.Group
		case *kmsg.SyncGroupRequest:
			g = r.Group
		case *kmsg.LeaveGroupRequest:
			g = r.Group
		case *kmsg.OffsetCommitRequest:
			g = r.Group
		}
		return nil, nil, g == group
	})
}

func TestAMemberWhoseSessionExpiredIsFencedAndItsCommitsChangeNothing(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, false)
	cfg := testConfig(t, c, topic)
	cfg.SessionTimeout = time.Second
	cfg.RequestTimeout = 2 * time.Second
	p0 := pipeline.PartitionID{Source: topic, Partition: 0}

	var cut atomic.Bool
	isolateGroup(t, c, cfg.Group, &cut)
	ga := assign(t, newSource(t, cfg))
	if err := ga.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{p0: {Next: 3, Checkpoint: "ckpt/a/3"}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}

	// The member stops (as a process stopped with SIGSTOP would) until the
	// coordinator drops it for its silence.
	cut.Store(true)
	deadline := time.Now().Add(kafkatest.Timeout)
	for len(kafkatest.GroupMembers(t, c.Brokers, cfg.Group)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the silent member is still in the group")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cut.Store(false)

	// It wakes: its generation is over, whatever it still believes.
	if err := ga.Fence(ctxT(t)); !errors.Is(err, kafkasrc.ErrGenerationEnded) {
		t.Errorf("Fence after the session expired = %v, want ErrGenerationEnded", err)
	}
	err := ga.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{p0: {Next: 8, Checkpoint: "ckpt/a/8-zombie"}})
	if !errors.Is(err, kafkasrc.ErrGenerationEnded) {
		t.Errorf("Commit after the session expired = %v, want ErrGenerationEnded", err)
	}
	if diff := gocmp.Diff(map[int32]kafkatest.Commit{0: {Offset: 3, Metadata: "ckpt/a/3"}}, kafkatest.Commits(t, c.Brokers, cfg.Group, topic)); diff != "" {
		t.Errorf("committed after the refused commit (-want +got):\n%s", diff)
	}
}
