package kafka_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
)

func TestTheInputsExtentComesFromTheTopicsNotTheAssignment(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		// Named so that the second sorts first: the list is sorted.
		a, b := kafkatest.Name(t, "zz-events"), kafkatest.Name(t, "aa-events")
		kafkatest.CreateTopic(t, c.Brokers, a, 3, false)
		kafkatest.CreateTopic(t, c.Brokers, b, 2, false)
		kafkatest.Produce(t, c.Brokers, a, append(kafkatest.Values(0, "a", 5), kafkatest.Values(2, "c", 2)...))
		kafkatest.Produce(t, c.Brokers, b, kafkatest.Values(1, "b", 4))
		cfg := testConfig(t, c, a, b)
		s := newSource(t, cfg)
		id := func(topic string, p int32) pipeline.PartitionID {
			return pipeline.PartitionID{Source: topic, Partition: p}
		}

		parts, err := s.InputPartitions(ctxT(t))
		if err != nil {
			t.Fatalf("InputPartitions: %v", err)
		}
		want := []pipeline.PartitionID{id(b, 0), id(b, 1), id(a, 0), id(a, 1), id(a, 2)}
		if diff := gocmp.Diff(want, parts); diff != "" {
			t.Errorf("InputPartitions (-want +got):\n%s", diff)
		}

		ends, err := s.EndOffsets(ctxT(t))
		if err != nil {
			t.Fatalf("EndOffsets: %v", err)
		}
		wantEnds := map[pipeline.PartitionID]int64{id(a, 0): 5, id(a, 1): 0, id(a, 2): 2, id(b, 0): 0, id(b, 1): 4}
		if diff := gocmp.Diff(wantEnds, ends); diff != "" {
			t.Errorf("EndOffsets (-want +got):\n%s", diff)
		}

		committed, err := s.GroupCommitted(ctxT(t))
		if err != nil {
			t.Fatalf("GroupCommitted: %v", err)
		}
		none := map[pipeline.PartitionID]int64{id(a, 0): -1, id(a, 1): -1, id(a, 2): -1, id(b, 0): -1, id(b, 1): -1}
		if diff := gocmp.Diff(none, committed); diff != "" {
			t.Errorf("GroupCommitted of a group that never committed (-want +got):\n%s", diff)
		}

		// One instance of the group commits the ends of some partitions:
		// every instance sees how far the whole job has read.
		g := assign(t, s)
		if err := g.Commit(ctxT(t), map[pipeline.PartitionID]pipeline.Committed{id(a, 0): {Next: 5}, id(b, 1): {Next: 3}}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		other := newSource(t, cfg)
		committed, err = other.GroupCommitted(ctxT(t))
		if err != nil {
			t.Fatalf("GroupCommitted: %v", err)
		}
		wantCommitted := map[pipeline.PartitionID]int64{id(a, 0): 5, id(a, 1): -1, id(a, 2): -1, id(b, 0): -1, id(b, 1): 3}
		if diff := gocmp.Diff(wantCommitted, committed); diff != "" {
			t.Errorf("GroupCommitted (-want +got):\n%s", diff)
		}
	})
}

func TestAMissingEventTopicIsNamed(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		there, missing := kafkatest.Name(t, "events"), kafkatest.Name(t, "missing")
		kafkatest.CreateTopic(t, c.Brokers, there, 1, false)
		s := newSource(t, testConfig(t, c, there, missing))
		want := fmt.Sprintf("kafka: the event topic %q does not exist on %s; create it or correct kafka.topics", missing, strings.Join(c.Brokers, ","))
		if _, err := s.InputPartitions(ctxT(t)); err == nil || err.Error() != want {
			t.Errorf("InputPartitions = %v\nwant %s", err, want)
		}
		if _, err := s.EndOffsets(ctxT(t)); err == nil || err.Error() != want {
			t.Errorf("EndOffsets = %v\nwant %s", err, want)
		}
		if _, err := s.GroupCommitted(ctxT(t)); err == nil || err.Error() != want {
			t.Errorf("GroupCommitted = %v\nwant %s", err, want)
		}
	})
}

func TestTheInputsExtentIsRetriedThroughTransientFailures(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
	kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(1, "b", 3))
	cfg := testConfig(t, c, topic)
	s := newSource(t, cfg)
	k := c.Kfake(t)
	h := k.Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: 2},
		kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetFetch}, Group: cfg.Group, Err: kerr.CoordinatorLoadInProgress, Count: 2, TopLevel: true},
	)
	ends, err := s.EndOffsets(ctxT(t))
	if err != nil {
		t.Fatalf("EndOffsets: %v", err)
	}
	if diff := gocmp.Diff(map[pipeline.PartitionID]int64{{Source: topic, Partition: 0}: 0, {Source: topic, Partition: 1}: 3}, ends); diff != "" {
		t.Errorf("EndOffsets (-want +got):\n%s", diff)
	}
	committed, err := s.GroupCommitted(ctxT(t))
	if err != nil {
		t.Fatalf("GroupCommitted: %v", err)
	}
	if diff := gocmp.Diff(map[pipeline.PartitionID]int64{{Source: topic, Partition: 0}: -1, {Source: topic, Partition: 1}: -1}, committed); diff != "" {
		t.Errorf("GroupCommitted (-want +got):\n%s", diff)
	}
	if h.Hits() != 4 {
		t.Errorf("%d requests failed, want 4", h.Hits())
	}

	cfg.RetryBudget = 200 * time.Millisecond
	s = newSource(t, cfg)
	k.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: topic, Err: kerr.NotLeaderForPartition, Count: -1})
	_, err = s.EndOffsets(ctxT(t))
	prefix := fmt.Sprintf("kafka: the input of group %q on %s: still failing after", cfg.Group, c.Brokers[0])
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("EndOffsets = %v, want an error starting %q", err, prefix)
	}
}
