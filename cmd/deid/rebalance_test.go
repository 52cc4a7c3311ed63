package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
)

// memWriter keeps a generated sample in memory, so a test can produce it in
// parts.
type memWriter struct {
	events   []kafkatest.Message
	settings []kafkatest.Message
}

func (m *memWriter) Event(p int, key, line []byte) error {
	m.events = append(m.events, kafkatest.Message{Partition: int32(p), Key: bytes.Clone(key), Value: bytes.Clone(line)})
	return nil
}

func (m *memWriter) Setting(key, line []byte) error {
	m.settings = append(m.settings, kafkatest.Message{Key: bytes.Clone(key), Value: bytes.Clone(line)})
	return nil
}

// TestRebalanceTakesAPartitionAwayMidWindow lets another member join deid's
// consumer group in the middle of a window, so the group takes a partition
// away from deid, then leave, so it comes back. deid must neither publish a
// window without that partition's data nor count anything twice: the final
// datasets equal file mode's.
func TestRebalanceTakesAPartitionAwayMidWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("a streaming run through a rebalance; not with -short")
	}
	c := kafkatest.Fake(t)
	t.Setenv("DEID_PSEUDONYM_KEY", "rebalance-key-0123456789")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 17, 20_000, 2, 120
	s := kafkaSample{events: kafkatest.Name(t, "events"), settings: kafkatest.Name(t, "settings"), group: kafkatest.Name(t, "deid")}
	s.dlq = s.group + ".dead-letters"
	kafkatest.CreateTopic(t, c.Brokers, s.events, cfg.Partitions, false)
	kafkatest.CreateTopic(t, c.Brokers, s.settings, 1, true)
	kafkatest.CreateTopic(t, c.Brokers, s.dlq, 1, false)
	var mem memWriter
	var err error
	if s.stats, err = gen.Generate(cfg, &mem); err != nil {
		t.Fatal(err)
	}
	s.files = filepath.Join(t.TempDir(), "files")
	if _, err := gen.WriteFiles(s.files, cfg); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(t.TempDir(), "deid.yaml")
	writeFile(t, s.conf, "settings_topic: "+s.settings+"\npipeline:\n  idle_timeout: 3s\n  checkpoint_interval: 100ms\nkafka:\n  session_timeout: 1s\n  rebalance_timeout: 2s\n")
	kafkatest.Produce(t, c.Brokers, s.settings, mem.settings)
	half := len(mem.events) / 2
	kafkatest.Produce(t, c.Brokers, s.events, mem.events[:half])

	fileOut := filepath.Join(t.TempDir(), "file-out")
	deid(t, "run", "--config", s.conf, "--input", s.files, "--settings", filepath.Join(s.files, gen.SettingsFileName), "--out", fileOut)

	out := filepath.Join(t.TempDir(), "out")
	addr := freeAddr(t)
	args := s.args(c, out, filepath.Join(t.TempDir(), "state"))
	args = append(args[:len(args)-1], "--http-addr", addr)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() { exit <- runCtx(ctx, args, &stdout, &stderr) }()
	waitFor(t, 60*time.Second, "the first half consumed", func() bool {
		m, err := scrape(addr)
		return err == nil && m["deid_records_read_total"] >= float64(half)
	})

	// Another member joins: the group takes a partition away from deid.
	intruder, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{ID: s.group, Brokers: c.Brokers,
		Topics: []string{s.events}, SessionTimeout: time.Second, RebalanceTimeout: 2 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 30*time.Second)
	gen2, err := intruder.Next(jctx)
	jcancel()
	if err != nil {
		t.Fatalf("the second member could not join: %v", err)
	}
	if n := len(gen2.Assignments[s.events]); n == 0 {
		t.Fatalf("the second member got no partition: the test cannot take one away")
	}
	// The rest of the data arrives while a partition is away.
	kafkatest.Produce(t, c.Brokers, s.events, mem.events[half:])
	time.Sleep(2 * time.Second) // let deid work on without the partition
	intruder.Close()            // it leaves: the partition comes back

	manifests, _ := filepathGlobManifests(fileOut)
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err := scrape(addr)
		if err == nil && m["deid_windows_published_total"] >= float64(manifests) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			<-exit
			t.Fatalf("not every window published after the rebalance: metrics %v\nlog:\n%s", m, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if diff := cmp.Diff(datasetFiles(t, fileOut), datasetFiles(t, out)); diff != "" {
		t.Errorf("datasets after a rebalance differ from file mode (-file +kafka):\n%s", diff)
	}
	excluded, _ := dispositions(t, out)
	if len(excluded) != int(sum(s.stats.Expected.Excluded)) {
		t.Errorf("%d exclusion entries, want %d", len(excluded), sum(s.stats.Expected.Excluded))
	}
}

func filepathGlobManifests(out string) (int, error) {
	m, err := filepath.Glob(filepath.Join(out, "datasets", "*", "*", "_manifest.json"))
	return len(m), err
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
