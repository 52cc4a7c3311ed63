package kafka_test

import (
	"fmt"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/kafkatest"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

func TestProducerWritesEventsToTheirPartitionAndSettingsByKey(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		events, settings := kafkatest.Name(t, "events"), kafkatest.Name(t, "settings")
		kafkatest.CreateTopic(t, c.Brokers, events, 3, false)
		kafkatest.CreateTopic(t, c.Brokers, settings, 4, true)
		p, err := kafkasrc.NewProducer(testConfig(t, c, events), events, settings)
		if err != nil {
			t.Fatalf("NewProducer: %v", err)
		}
		// More than one buffer's worth, reusing the caller's buffer.
		const n = 40_000
		line := make([]byte, 0, 64)
		want := map[int32][]string{}
		for i := range n {
			part := i % 3
			line = fmt.Appendf(line[:0], `{"event_id":"e%d"}`, i)
			if err := p.Event(part, nil, line); err != nil {
				t.Fatalf("Event: %v", err)
			}
			want[int32(part)] = append(want[int32(part)], string(line))
		}
		for i := range 10 {
			if err := p.Setting(fmt.Appendf(nil, "ws-%d", i), fmt.Appendf(nil, `{"workspace_id":"ws-%d"}`, i)); err != nil {
				t.Fatalf("Setting: %v", err)
			}
		}
		if err := p.Setting([]byte("ws-3"), nil); err != nil {
			t.Fatalf("Setting (tombstone): %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		got := map[int32][]string{}
		for _, m := range kafkatest.ReadAll(t, c.Brokers, events) {
			got[m.Partition] = append(got[m.Partition], string(m.Value))
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("events by partition (-want +got):\n%s", diff)
		}

		partOf := map[string]int32{}
		var tombstones []string
		for _, m := range kafkatest.ReadAll(t, c.Brokers, settings) {
			k := string(m.Key)
			if p, ok := partOf[k]; ok && p != m.Partition {
				t.Errorf("key %s on partitions %d and %d", k, p, m.Partition)
			}
			partOf[k] = m.Partition
			if m.Value == nil {
				tombstones = append(tombstones, k)
			}
		}
		if len(partOf) != 10 || !gocmp.Equal(tombstones, []string{"ws-3"}) {
			t.Errorf("settings: %d keys, tombstones %v; want 10 keys and a tombstone for ws-3", len(partOf), tombstones)
		}
	})
}

func TestProducerReportsAFailedFlush(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "missing")
	p, err := kafkasrc.NewProducer(testConfig(t, c, topic), topic, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Event(0, nil, []byte("x")); err != nil {
		t.Fatalf("Event (buffered): %v", err)
	}
	err = p.Close()
	if err == nil || !strings.HasPrefix(err.Error(), "kafka: producing 1 records to "+topic+": ") {
		t.Errorf("Close = %v, want the failure naming the topic", err)
	}
	if err := p.Event(0, nil, []byte("y")); err == nil {
		t.Error("Event after Close succeeded")
	}
}
