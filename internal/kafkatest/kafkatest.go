package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Environment variables the harness reads.
const (
	// EnvBrokers holds the real broker's address(es), comma-separated, as
	// `scripts/kafka-local.sh env` prints them.
	EnvBrokers = "DEID_KAFKA_BROKERS"
	// EnvRequire, when set (to anything but "" or "0"), makes Real fail the
	// test instead of skipping it when no broker is configured: `make test`
	// sets it after starting the broker, so CI never skips silently.
	EnvRequire = "DEID_REQUIRE_KAFKA"
)

// Timeout bounds every helper's wait for the cluster.
const Timeout = 30 * time.Second

// Cluster is a Kafka cluster a test talks to: an in-process kfake cluster
// (Fake) or the real broker (Real). The same test body runs on either
// (Each); the fault-injection methods need a fake one.
type Cluster struct {
	// Kind is "fake" or "real".
	Kind string
	// Brokers are the cluster's addresses, "127.0.0.1:port".
	Brokers []string

	mu    sync.Mutex
	fake  *kfake.Cluster
	opts  []kfake.Opt
	ports []int
	// local is the broker process of a Dedicated cluster.
	local *localBroker
}

// IsFake tells whether the cluster is a kfake cluster.
func (c *Cluster) IsFake() bool { return c.Kind == "fake" }

// Fake starts a kfake cluster on 127.0.0.1 for the test and closes it at
// cleanup. It has one broker (add kfake.NumBrokers to change that),
// accepts group sessions from 100ms, and persists its state in a temporary
// directory so Restart can bring it back as it was. opts go to
// kfake.NewCluster after those defaults.
func Fake(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	base := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.DataDir(t.TempDir()),
	}
	c := &Cluster{Kind: "fake", opts: append(base, opts...)}
	f, err := kfake.NewCluster(c.opts...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	c.fake = f
	c.Brokers = f.ListenAddrs()
	for _, a := range c.Brokers {
		_, port, _ := net.SplitHostPort(a)
		var p int
		fmt.Sscan(port, &p)
		c.ports = append(c.ports, p)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fake != nil {
			c.fake.Close()
		}
	})
	return c
}

// Real returns the real broker named by DEID_KAFKA_BROKERS. When it is not
// set the test is skipped, unless DEID_REQUIRE_KAFKA is set: then the test
// fails, so a CI run never skips the real-broker suite silently. The
// brokers must be on the loopback interface: tests create and write topics.
// Every test package shares it at once: it is never restarted (Dedicated
// runs one that can be).
func Real(t testing.TB) *Cluster {
	t.Helper()
	env := strings.TrimSpace(os.Getenv(EnvBrokers))
	if env == "" {
		hint := "start one with: bash scripts/kafka-local.sh start && eval \"$(bash scripts/kafka-local.sh env)\""
		if req := os.Getenv(EnvRequire); req != "" && req != "0" {
			t.Fatalf("kafkatest: %s=%s but %s is not set; %s", EnvRequire, req, EnvBrokers, hint)
		}
		t.Skipf("kafkatest: no real Kafka broker (%s is not set); %s", EnvBrokers, hint)
	}
	brokers := strings.Split(env, ",")
	for _, b := range brokers {
		host, _, err := net.SplitHostPort(b)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			t.Fatalf("kafkatest: %s=%q: tests only talk to a broker on 127.0.0.1 (they create and write topics)", EnvBrokers, env)
		}
	}
	return &Cluster{Kind: "real", Brokers: brokers}
}

// Each runs body twice as subtests: "fake" on a Fake cluster (built with
// opts) and "real" on the Real broker (skipped or failed as Real says).
func Each(t *testing.T, body func(t *testing.T, c *Cluster), opts ...kfake.Opt) {
	t.Helper()
	t.Run("fake", func(t *testing.T) { body(t, Fake(t, opts...)) })
	t.Run("real", func(t *testing.T) { body(t, Real(t)) })
}

// Kfake returns the kfake cluster, for its control hooks (Control,
// ControlKey, Fault, MoveTopicPartition…). It fails the test on a real
// cluster. After Restart it is a new value.
func (c *Cluster) Kfake(t testing.TB) *kfake.Cluster {
	t.Helper()
	if !c.IsFake() {
		t.Fatalf("kafkatest: fault injection needs a fake cluster, this one is %s", c.Kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fake == nil {
		t.Fatal("kafkatest: the fake cluster is stopped")
	}
	return c.fake
}

// FailFetches makes the next n fetches of topic (every partition) fail
// with err (a retriable error such as kerr.NotLeaderForPartition, or a
// fatal one). n < 0 fails them until the handle is removed.
func (c *Cluster) FailFetches(t testing.TB, topic string, n int, err *kerr.Error) *kfake.FaultHandle {
	t.Helper()
	return c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: err, Count: n})
}

// FailCommits makes the next n offset commits of group fail with err.
func (c *Cluster) FailCommits(t testing.TB, group string, n int, err *kerr.Error) *kfake.FaultHandle {
	t.Helper()
	return c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group, Err: err, Count: n})
}

// Stop shuts the fake cluster down as a crashed broker would disappear:
// its ports refuse connections and open connections break. Start brings
// it back. On a Dedicated cluster it stops the broker process (SIGTERM,
// as an operator's restart does) and waits until it has exited; on the
// shared real broker it fails the test.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if c.local != nil {
		c.local.stop(t)
		return
	}
	c.Kfake(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fake.Close()
	c.fake = nil
}

// Start brings a stopped fake cluster back on the same ports with the state
// it had (topics, records, committed offsets), as a restarted broker would.
// On a Dedicated cluster it starts the broker process again on its port
// and log dir, and waits until it serves.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if c.local != nil {
		c.local.start(t)
		return
	}
	if !c.IsFake() {
		t.Fatalf("kafkatest: the shared real broker is never restarted; use Dedicated")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fake != nil {
		t.Fatal("kafkatest: the fake cluster is running")
	}
	deadline := time.Now().Add(Timeout)
	for {
		f, err := kfake.NewCluster(append(slices.Clone(c.opts), kfake.Ports(c.ports...))...)
		if err == nil {
			c.fake = f
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: restarting kfake on ports %v: %v", c.ports, err)
		}
		time.Sleep(50 * time.Millisecond) // the old listener may still hold the port
	}
}

// Name returns a topic or group name unique to the test and the run (so
// runs against a long-lived real broker never collide), starting with
// prefix.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, t.Name())
	if len(base) > 150 {
		base = base[:150]
	}
	return prefix + "." + base + "." + hex.EncodeToString(b[:])
}

// client returns a franz-go client: the harness checks deid's kafka-go
// code with an independent implementation of the protocol.
func client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RetryTimeout(Timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		// Records as deid's tests and benchmarks expect them: uncompressed.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	return cl
}

func timeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// CreateTopic creates topic with the given number of partitions (one
// replica), log-compacted when compacted, and waits until every partition
// has a leader. The topic is deleted at cleanup (best effort).
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int, compacted bool) {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	ctx := timeout(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = int32(partitions)
	rt.ReplicationFactor = 1
	if compacted {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name = "cleanup.policy"
		v := "compact"
		cfg.Value = &v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = int32(Timeout / time.Millisecond)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("kafkatest: creating topic %s: %v", topic, err)
	}
	t.Cleanup(func() { deleteTopic(brokers, topic) })
	for {
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = &topic
		mreq.Topics = append(mreq.Topics, mt)
		mresp, err := mreq.RequestWith(ctx, cl)
		if err == nil && len(mresp.Topics) == 1 && mresp.Topics[0].ErrorCode == 0 && len(mresp.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range mresp.Topics[0].Partitions {
				ready = ready && p.ErrorCode == 0 && p.Leader >= 0
			}
			if ready {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: topic %s has no leader for every partition after %s", topic, Timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deleteTopic(brokers []string, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RetryTimeout(2*time.Second), kgo.RequestRetries(1))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = &topic
	req.Topics = append(req.Topics, dt)
	_, _ = req.RequestWith(ctx, cl) // best effort
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Message is a record as the helpers produce and read it.
type Message struct {
	Partition int32
	// Offset is set by Produce and ReadAll.
	Offset int64
	Key    []byte
	// Value nil is a tombstone.
	Value   []byte
	Headers []Header
}

// Produce writes msgs to topic, each to its Partition, in order, acked by
// all in-sync replicas, and returns them with their offsets.
func Produce(t testing.TB, brokers []string, topic string, msgs []Message) []Message {
	t.Helper()
	return ProduceWith(t, brokers, topic, msgs)
}

// ProduceWith is Produce with the producer's options changed, e.g. its
// batches compressed (kgo.ProducerBatchCompression).
func ProduceWith(t testing.TB, brokers []string, topic string, msgs []Message, opts ...kgo.Opt) []Message {
	t.Helper()
	if len(msgs) == 0 {
		return nil
	}
	cl := client(t, brokers, opts...)
	defer cl.Close()
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: topic, Partition: m.Partition, Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = r
	}
	if err := cl.ProduceSync(timeout(t), recs...).FirstErr(); err != nil {
		t.Fatalf("kafkatest: producing %d records to %s: %v", len(msgs), topic, err)
	}
	out := slices.Clone(msgs)
	for i, r := range recs {
		out[i].Offset = r.Offset
	}
	return out
}

// Values builds n messages on partition p with values prefix-0, prefix-1…
func Values(p int32, prefix string, n int) []Message {
	out := make([]Message, n)
	for i := range out {
		out[i] = Message{Partition: p, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return out
}

// EndOffsets returns each partition's high-water mark.
func EndOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	return endOffsets(t, timeout(t), cl, topic)
}

func endOffsets(t testing.TB, ctx context.Context, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err == nil && (len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0) {
		err = fmt.Errorf("metadata: %v", mresp.Topics)
	}
	if err != nil {
		t.Fatalf("kafkatest: topic %s: %v", topic, err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // latest: the high-water mark
		lt.Partitions = append(lt.Partitions, lp)
	}
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("kafkatest: listing offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("kafkatest: listing offsets of %s[%d]: %v", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// ReadAll reads every record of topic up to the high-water marks as they are
// at the call, sorted by partition then offset.
func ReadAll(t testing.TB, brokers []string, topic string) []Message {
	t.Helper()
	ctx := timeout(t)
	meta := client(t, brokers)
	ends := endOffsets(t, ctx, meta, topic)
	meta.Close()
	parts := map[int32]kgo.Offset{}
	remaining := 0
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			remaining++
		}
	}
	var out []Message
	if remaining == 0 {
		return out
	}
	cl := client(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	defer cl.Close()
	done := map[int32]bool{}
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: reading %s: only %d of %d partitions read to their end after %s", topic, len(done), len(parts), Timeout)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("kafkatest: reading %s[%d]: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			m := Message{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, m)
			if r.Offset == ends[r.Partition]-1 && !done[r.Partition] {
				done[r.Partition] = true
				remaining--
			}
		})
	}
	slices.SortFunc(out, func(a, b Message) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

// Committed returns the offsets group has committed for topic, by
// partition; partitions without a commit are absent.
func Committed(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for p, c := range Commits(t, brokers, group, topic) {
		out[p] = c.Offset
	}
	return out
}

// Commit is a group's committed offset of a partition with the metadata
// committed beside it.
type Commit struct {
	Offset   int64
	Metadata string
}

// Commits returns the offsets group has committed for topic with their
// metadata, by partition; partitions without a commit are absent.
func Commits(t testing.TB, brokers []string, group, topic string) map[int32]Commit {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	ctx := timeout(t)
	for p := range endOffsets(t, ctx, cl, topic) {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	var resp *kmsg.OffsetFetchResponse
	for {
		var err error
		resp, err = req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			break
		}
		if err == kerr.GroupIDNotFound {
			return map[int32]Commit{} // kfake's answer for a group that never committed
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			t.Fatalf("kafkatest: fetching the offsets of group %s: %v", group, err)
		}
		time.Sleep(50 * time.Millisecond) // the coordinator is loading: ask again
	}
	out := map[int32]Commit{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				c := Commit{Offset: p.Offset}
				if p.Metadata != nil {
					c.Metadata = *p.Metadata
				}
				out[p.Partition] = c
			}
		}
	}
	return out
}

// GroupMembers returns the member ids of group as its coordinator lists
// them (none for an empty or unknown group).
func GroupMembers(t testing.TB, brokers []string, group string) []string {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	ctx := timeout(t)
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Groups) == 1 {
			err = kerr.ErrorForCode(resp.Groups[0].ErrorCode)
		}
		if err == nil {
			var out []string
			for _, m := range resp.Groups[0].Members {
				out = append(out, m.MemberID)
			}
			slices.Sort(out)
			return out
		}
		if err == kerr.GroupIDNotFound {
			return nil
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			t.Fatalf("kafkatest: describing group %s: %v", group, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
