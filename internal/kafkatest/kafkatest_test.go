package kafkatest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/mya/deid/internal/kafkatest"
)

// recorder stands in for a test to see whether Real skips or fails it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func realWith(t *testing.T, brokers, require string) (*kafkatest.Cluster, *recorder) {
	t.Setenv(kafkatest.EnvBrokers, brokers)
	t.Setenv(kafkatest.EnvRequire, require)
	r := &recorder{TB: t}
	var c *kafkatest.Cluster
	done := make(chan struct{})
	go func() {
		defer close(done)
		c = kafkatest.Real(r)
	}()
	<-done
	return c, r
}

func TestRealSkipsOnlyWhenTheBrokerIsNotRequired(t *testing.T) {
	if _, r := realWith(t, "", ""); r.skip == "" || r.fatal != "" {
		t.Errorf("no broker, not required: skip %q, fatal %q; want a skip", r.skip, r.fatal)
	}
	if _, r := realWith(t, "", "0"); r.skip == "" || r.fatal != "" {
		t.Errorf("no broker, DEID_REQUIRE_KAFKA=0: skip %q, fatal %q; want a skip", r.skip, r.fatal)
	}
	if _, r := realWith(t, "", "1"); r.fatal == "" || r.skip != "" {
		t.Errorf("no broker, required: skip %q, fatal %q; want a failure", r.skip, r.fatal)
	}
	if _, r := realWith(t, "10.1.2.3:9092", "1"); r.fatal == "" {
		t.Error("a broker off the loopback interface was accepted")
	}
	c, r := realWith(t, "127.0.0.1:19092,localhost:19093", "1")
	if r.fatal != "" || r.skip != "" || c == nil || !gocmp.Equal(c.Brokers, []string{"127.0.0.1:19092", "localhost:19093"}) || c.IsFake() {
		t.Errorf("configured broker: cluster %+v, skip %q, fatal %q", c, r.skip, r.fatal)
	}
}

func TestHelpersRoundTrip(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "roundtrip")
		kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
		in := []kafkatest.Message{
			{Partition: 1, Key: []byte("k"), Value: []byte("v"), Headers: []kafkatest.Header{{Key: "h", Value: []byte("x")}}},
			{Partition: 0, Value: []byte("a")},
			{Partition: 1, Key: []byte("tomb")},
		}
		out := kafkatest.Produce(t, c.Brokers, topic, in)
		if out[0].Offset != 0 || out[1].Offset != 0 || out[2].Offset != 1 {
			t.Errorf("offsets %d %d %d, want 0 0 1", out[0].Offset, out[1].Offset, out[2].Offset)
		}
		want := []kafkatest.Message{out[1], out[0], out[2]}
		if diff := gocmp.Diff(want, kafkatest.ReadAll(t, c.Brokers, topic)); diff != "" {
			t.Errorf("ReadAll (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(map[int32]int64{0: 1, 1: 2}, kafkatest.EndOffsets(t, c.Brokers, topic)); diff != "" {
			t.Errorf("EndOffsets (-want +got):\n%s", diff)
		}
		if got := kafkatest.Committed(t, c.Brokers, kafkatest.Name(t, "group"), topic); len(got) != 0 {
			t.Errorf("Committed of a new group = %v, want none", got)
		}
	})
}

func TestAStoppedFakeComesBackWithItsState(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "restart")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, true)
	kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "a", 3))
	c.Stop(t)
	c.Start(t)
	got := kafkatest.ReadAll(t, c.Brokers, topic)
	if len(got) != 3 || string(got[2].Value) != "a-2" {
		t.Errorf("after the restart: %v, want the 3 records", got)
	}
}

func TestDedicatedSkipsOnlyWhenTheBrokerIsNotRequired(t *testing.T) {
	t.Setenv(kafkatest.EnvBrokers, "")
	t.Setenv(kafkatest.EnvRequire, "")
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		kafkatest.Dedicated(r)
	}()
	<-done
	if r.skip == "" || r.fatal != "" {
		t.Errorf("no real-broker suite: skip %q, fatal %q; want a skip", r.skip, r.fatal)
	}
}

// TestBrokerRestartOfADedicatedBroker stops a dedicated real broker and
// starts it again: it comes back on the same address with its topics,
// records and the group's committed offsets, and serves writes.
func TestBrokerRestartOfADedicatedBroker(t *testing.T) {
	c := kafkatest.Dedicated(t)
	if c.IsFake() || len(c.Brokers) != 1 {
		t.Fatalf("Dedicated = %+v, want one real broker", c)
	}
	topic, group := kafkatest.Name(t, "restart"), kafkatest.Name(t, "group")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
	want := kafkatest.Produce(t, c.Brokers, topic, append(kafkatest.Values(0, "a", 3), kafkatest.Values(1, "b", 2)...))
	commit(t, c.Brokers, group, topic, map[int32]int64{0: 2, 1: 1})

	c.Stop(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := cl.Ping(ctx); err == nil {
		t.Error("the stopped broker still answers")
	}
	cancel()
	cl.Close()
	c.Start(t)

	if diff := gocmp.Diff(want, kafkatest.ReadAll(t, c.Brokers, topic)); diff != "" {
		t.Errorf("records after the restart (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(map[int32]int64{0: 2, 1: 1}, kafkatest.Committed(t, c.Brokers, group, topic)); diff != "" {
		t.Errorf("committed offsets after the restart (-want +got):\n%s", diff)
	}
	more := kafkatest.Produce(t, c.Brokers, topic, kafkatest.Values(0, "c", 1))
	if more[0].Offset != 3 {
		t.Errorf("a record produced after the restart got offset %d, want 3", more[0].Offset)
	}
}

// commit commits offsets for group as a consumer outside any generation
// does (a standalone commit), by topic name: the versions of Kafka 4.0,
// before commits named topics by id.
func commit(t *testing.T, brokers []string, group, topic string, offsets map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxVersions(kversion.V4_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("committing offsets: %v", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("committing %s[%d]: %v", rt.Topic, rp.Partition, err)
			}
		}
	}
}

func TestCommitsAndGroupMembersReportWhatTheGroupHolds(t *testing.T) {
	c := kafkatest.Fake(t)
	topic, group := kafkatest.Name(t, "events"), kafkatest.Name(t, "group")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, false)
	if got := kafkatest.Commits(t, c.Brokers, group, topic); len(got) != 0 {
		t.Errorf("Commits of a group that never committed = %v, want none", got)
	}
	if got := kafkatest.GroupMembers(t, c.Brokers, group); len(got) != 0 {
		t.Errorf("GroupMembers of an unknown group = %v, want none", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()

	// Commits outside any generation, one with metadata, one without.
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.MaxVersions(kversion.V3_6_0())) // commits by topic name
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	meta := "ckpt/events-0/9"
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, off := range map[int32]int64{0: 9, 1: 4} {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, off
		if p == 0 {
			rp.Metadata = &meta
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("committing partition %d: %v", p.Partition, err)
		}
	}
	want := map[int32]kafkatest.Commit{0: {Offset: 9, Metadata: meta}, 1: {Offset: 4}}
	if diff := gocmp.Diff(want, kafkatest.Commits(t, c.Brokers, group, topic)); diff != "" {
		t.Errorf("Commits (-want +got):\n%s", diff)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(kafkatest.GroupMembers(t, c.Brokers, group)) == 0 {
		poll, stop := context.WithTimeout(ctx, 200*time.Millisecond)
		cl.PollFetches(poll)
		stop()
		if ctx.Err() != nil {
			t.Fatal("the client never joined the group")
		}
	}
	if got := kafkatest.GroupMembers(t, c.Brokers, group); len(got) != 1 {
		t.Errorf("GroupMembers = %v, want the one client", got)
	}
}
