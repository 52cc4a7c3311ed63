package kafkadlq_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/kafkadlq"
)

func config(t *testing.T, c *kafkatest.Cluster) kafkadlq.Config {
	cfg := kafkadlq.DefaultConfig()
	cfg.Kafka.Brokers = c.Brokers
	cfg.Group = kafkatest.Name(t, "group")
	cfg.Kafka.RetryBackoff, cfg.Kafka.RetryBackoffMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.Kafka.RequestTimeout = 5 * time.Second
	return cfg
}

func newSink(t *testing.T, cfg kafkadlq.Config, opts ...kafkadlq.Option) *kafkadlq.Sink {
	t.Helper()
	s, err := kafkadlq.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeWriter returns a fake broker, the configuration of a sink on a fresh
// one-partition dead-letter topic of it (edit, when not nil, changes it
// first) and a writer of that sink, made with opts.
func fakeWriter(t *testing.T, edit func(*kafkadlq.Config), opts ...kafkadlq.Option) (*kafkatest.Cluster, kafkadlq.Config, pipeline.DeadLetterWriter) {
	t.Helper()
	c := kafkatest.Fake(t)
	cfg := config(t, c)
	if edit != nil {
		edit(&cfg)
	}
	cfg.Topic = kafkatest.Name(t, "dlq")
	kafkatest.CreateTopic(t, c.Brokers, cfg.Topic, 1, false)
	w, err := newSink(t, cfg, opts...).Writer(pipeline.PartitionID{Source: "events"})
	if err != nil {
		t.Fatalf("Writer: %v", err)
	}
	return c, cfg, w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func headers(kv ...string) []kafkatest.Header {
	var out []kafkatest.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kafkatest.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// letter decodes a dead letter's value.
func letter(t *testing.T, m kafkatest.Message) deadletter.Line {
	t.Helper()
	var l deadletter.Line
	if err := json.Unmarshal(m.Value, &l); err != nil {
		t.Fatalf("dead letter at %d: %v: %q", m.Offset, err, m.Value)
	}
	return l
}

func TestDeadLettersCarryLengthHashReasonAndPositionNotBytes(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := config(t, c)
		kafkatest.CreateTopic(t, c.Brokers, cfg.Group+".dead-letters", 3, false)
		s := newSink(t, cfg)
		if s.Topic() != cfg.Group+".dead-letters" {
			t.Errorf("topic %q, want <group>.dead-letters", s.Topic())
		}
		w, err := s.Writer(pipeline.PartitionID{Source: "events", Partition: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The caller's buffer is reused after Write.
		buf := []byte("{\"event_type\":\"message.direct\",\"payload\":{\"body\":\"Hi Jane, call me\"\xff\x00\n truncated")
		pos := pipeline.Position{Source: "events", Partition: 3, Offset: 41}
		if err := w.Write(pipeline.Record{Pos: pos, Value: buf}, pipeline.Malformed("invalid_json", "", "unexpected byte at offset 60")); err != nil {
			t.Fatal(err)
		}
		v0 := append([]byte(nil), buf...)
		copy(buf, "XXXXXXXX")
		pos.Offset = 42
		v1 := []byte(`{"event_id":"e2","event_type":"campaign.metrics","workspace_id":"w1","payload":{"caption":"Glow up","impressions":-3}}`)
		if err := w.Write(pipeline.Record{Pos: pos, Value: v1}, pipeline.Malformed("negative_counter", "payload.impressions", "must not be negative")); err != nil {
			t.Fatal(err)
		}
		pos.Offset = 43
		if err := w.Write(pipeline.Record{Pos: pos}, pipeline.Malformed("invalid_json", "", "empty record")); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctxT(t)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		got := kafkatest.ReadAll(t, c.Brokers, s.Topic())
		first := got[0].Partition
		for i := range got {
			if got[i].Partition != first {
				t.Errorf("dead letters of one source partition on partitions %d and %d", first, got[i].Partition)
			}
			got[i].Partition, got[i].Offset = 0, int64(i)
		}
		key := []byte("events[3]")
		value := func(l deadletter.Line) []byte {
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		want := []kafkatest.Message{
			{Offset: 0, Key: key, Value: value(deadletter.Line{Source: "events", Partition: 3, Offset: 41, Reason: "invalid_json",
				Detail: "unexpected byte at offset 60", Length: len(v0), SHA256: sum(v0)}),
				Headers: headers("deid.reason", "invalid_json", "deid.field", "",
					"deid.detail", "unexpected byte at offset 60", "deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "41")},
			{Offset: 1, Key: key, Value: value(deadletter.Line{Source: "events", Partition: 3, Offset: 42, Reason: "negative_counter",
				Field: "payload.impressions", Detail: "must not be negative", Length: len(v1), SHA256: sum(v1)}),
				Headers: headers("deid.reason", "negative_counter", "deid.field", "payload.impressions", "deid.detail", "must not be negative",
					"deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "42")},
			{Offset: 2, Key: key, Value: value(deadletter.Line{Source: "events", Partition: 3, Offset: 43, Reason: "invalid_json",
				Detail: "empty record", SHA256: sum(nil)}),
				Headers: headers("deid.reason", "invalid_json", "deid.field", "",
					"deid.detail", "empty record", "deid.source.topic", "events", "deid.source.partition", "3", "deid.source.offset", "43")},
		}
		// kafka-go writes an empty header value as empty, franz-go reads it
		// back as empty or nil: compare as strings.
		if diff := gocmp.Diff(want, got, gocmp.Transformer("bytes", func(b []byte) string { return string(b) })); diff != "" {
			t.Errorf("dead letters (-want +got):\n%s", diff)
		}
		for _, m := range got {
			for _, secret := range []string{"Hi Jane", "Glow up", "value_base64"} {
				if strings.Contains(string(m.Value), secret) {
					t.Errorf("dead letter %d holds %q", m.Offset, secret)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := w.Write(pipeline.Record{Pos: pos}, pipeline.Malformed("invalid_json", "", "")); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
}

func TestKeepPayloadKeepsOnlyWhatItMay(t *testing.T) {
	ordinary := `{"event_id":"e1","event_type":"campaign.metrics","workspace_id":"w1","payload":{"clicks":-1}}`
	tests := []struct {
		name, in, withheld string
	}{
		{"an ordinary malformed record is kept", ordinary, ""},
		{"a malformed direct message is withheld", `{"event_type":"message.direct","workspace_id":"w1","payload":{"body":"call me"`, deadletter.WithheldMessageType},
		{"a record of an opted-out workspace is withheld", `{"event_type":"campaign.metrics","workspace_id":"w-gone","payload":{"clicks":-1}}`, deadletter.WithheldExcludedWorkspace},
		{"a totally broken record is withheld", "\xff\x00 call me", deadletter.WithheldUnreadable},
		{"a record larger than a dead letter carries is withheld",
			`{"event_type":"campaign.metrics","workspace_id":"w1","x":"` + strings.Repeat("x", 700_000) + `"}`, deadletter.WithheldTooLarge},
	}
	c, cfg, w := fakeWriter(t, func(cfg *kafkadlq.Config) { cfg.KeepPayload = true },
		kafkadlq.WithExcluded(func(ws []byte) bool { return string(ws) == "w-gone" }))
	for i, tt := range tests {
		if err := w.Write(pipeline.Record{Pos: pipeline.Position{Source: "events", Offset: int64(i)}, Value: []byte(tt.in)},
			pipeline.Malformed("invalid_json", "", "unexpected end of input")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := kafkatest.ReadAll(t, c.Brokers, cfg.Topic)
	if len(got) != len(tests) {
		t.Fatalf("%d dead letters, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := letter(t, got[i])
			var want []byte
			if tt.withheld == "" {
				want = []byte(tt.in)
			}
			if l.PayloadWithheld != tt.withheld || !bytes.Equal(l.Value, want) {
				t.Errorf("kept %.40q, withheld %q; want %.40q, %q", l.Value, l.PayloadWithheld, want, tt.withheld)
			}
			if l.Length != len(tt.in) || l.SHA256 != sum([]byte(tt.in)) {
				t.Errorf("length %d, sha256 %s: not of the record", l.Length, l.SHA256)
			}
		})
	}
}

func TestKeepPayloadNeedsTheConsentState(t *testing.T) {
	cfg := kafkadlq.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Group, cfg.KeepPayload = []string{"127.0.0.1:9092"}, "deid", true
	if _, err := kafkadlq.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "dead_letters.keep_payload: ") {
		t.Errorf("New with keep_payload and no consent state = %v", err)
	}
}

func TestFlushFailsClearlyAndKeepsTheDeadLetters(t *testing.T) {
	c, cfg, w := fakeWriter(t, nil)
	if err := w.Write(pipeline.Record{Pos: pipeline.Position{Offset: 7}, Value: []byte("x")}, pipeline.Malformed("invalid_json", "", "")); err != nil {
		t.Fatal(err)
	}
	h := c.Kfake(t).Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: cfg.Topic, Err: kerr.TopicAuthorizationFailed, Count: -1})
	err := w.Flush(ctxT(t))
	if err == nil || !strings.HasPrefix(err.Error(), "producing 1 to "+cfg.Topic+": ") || !strings.Contains(err.Error(), "Topic Authorization Failed") {
		t.Fatalf("Flush = %v, want the broker's refusal naming the topic", err)
	}
	// Once the broker takes it, the same dead letter goes out.
	h.Remove()
	if err := w.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := kafkatest.ReadAll(t, c.Brokers, cfg.Topic); len(got) != 1 || letter(t, got[0]).Offset != 7 {
		t.Errorf("dead letters %v, want the one buffered", got)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := kafkadlq.DefaultConfig()
	cfg.Group = ""
	cfg.Topic = ""
	err := cfg.Validate()
	want := `kafka.brokers: at least one broker is required, e.g. ["127.0.0.1:9092"]` + "\n" +
		`dead_letters.topic: required when kafka.group is empty, e.g. "deid.dead-letters"`
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Topic = "dead letters"
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), `dead_letters.topic: "dead letters" is not a Kafka topic name`) {
		t.Errorf("Validate = %v", err)
	}
	cfg.Topic, cfg.Group = "", "deid"
	if err := cfg.Validate(); err != nil || cfg.TopicName() != "deid.dead-letters" {
		t.Errorf("Validate = %v, topic %q", err, cfg.TopicName())
	}
}

// A broker that goes away and comes back within kafka.retry_budget — a
// restart — does not fail a Flush: it retries, and every dead letter gets
// out once the broker is back.
func TestFlushRidesOutABrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a broker restart; not with -short")
	}
	c, cfg, w := fakeWriter(t, func(cfg *kafkadlq.Config) {
		cfg.Kafka.RequestTimeout, cfg.Kafka.DialTimeout = time.Second, 500*time.Millisecond
		cfg.Kafka.RetryBudget = 30 * time.Second
	})
	for i, v := range []string{"a", "b", "c"} {
		if err := w.Write(pipeline.Record{Pos: pipeline.Position{Offset: int64(i)}, Value: []byte(v)}, pipeline.Malformed("invalid_json", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	c.Stop(t)
	// Longer than kafka-go's own attempts last (3 here, ~1 s at most).
	back := time.AfterFunc(3*time.Second, func() { c.Start(t) })
	defer back.Stop()
	if err := w.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush across a broker restart: %v", err)
	}
	var got []string
	for _, m := range kafkatest.ReadAll(t, c.Brokers, cfg.Topic) {
		got = append(got, letter(t, m).SHA256)
	}
	if diff := gocmp.Diff([]string{sum([]byte("a")), sum([]byte("b")), sum([]byte("c"))}, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// A broker that stays away longer than kafka.retry_budget fails the Flush,
// saying so, and the dead letters stay buffered.
func TestFlushGivesUpAfterTheRetryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the retry budget; not with -short")
	}
	c, cfg, w := fakeWriter(t, func(cfg *kafkadlq.Config) {
		cfg.Kafka.RequestTimeout, cfg.Kafka.DialTimeout = 500*time.Millisecond, 200*time.Millisecond
		cfg.Kafka.RetryBudget = time.Second
	})
	if err := w.Write(pipeline.Record{Pos: pipeline.Position{Offset: 7}, Value: []byte("x")}, pipeline.Malformed("invalid_json", "", "")); err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	err := w.Flush(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "kafka.retry_budget") {
		t.Fatalf("Flush = %v, want a failure naming the retry budget", err)
	}
	c.Start(t)
	kafkatest.EndOffsets(t, c.Brokers, cfg.Topic) // serving again
	var ferr error
	for range 5 { // each Flush has a budget of 1s only
		if ferr = w.Flush(ctxT(t)); ferr == nil {
			break
		}
	}
	if ferr != nil {
		t.Fatalf("Flush once the broker is back: %v", ferr)
	}
	if got := kafkatest.ReadAll(t, c.Brokers, cfg.Topic); len(got) != 1 || letter(t, got[0]).Offset != 7 {
		t.Errorf("dead letters %v, want the one buffered", got)
	}
}
