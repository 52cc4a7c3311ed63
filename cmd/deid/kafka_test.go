package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/kafkadlq"
	kafkasrc "github.com/mya/deid/sources/kafka"
)

// kafkaSample produces a generated sample to fresh topics of c and writes
// the same sample to files; it returns the topic names and the file dir.
type kafkaSample struct {
	events, settings, group, dlq string
	files                        string
	stats                        gen.Stats
	conf                         string
}

func produceSample(t *testing.T, c *kafkatest.Cluster, cfg gen.Config) kafkaSample {
	t.Helper()
	s := kafkaSample{events: kafkatest.Name(t, "events"), settings: kafkatest.Name(t, "settings"),
		group: kafkatest.Name(t, "deid")}
	s.dlq = s.group + kafkadlq.TopicSuffix
	kafkatest.CreateTopic(t, c.Brokers, s.events, cfg.Partitions, false)
	kafkatest.CreateTopic(t, c.Brokers, s.settings, 1, true)
	kafkatest.CreateTopic(t, c.Brokers, s.dlq, 1, false)
	kc := kafkasrc.DefaultConfig()
	kc.Brokers = c.Brokers
	p, err := kafkasrc.NewProducer(kc, s.events, s.settings)
	if err != nil {
		t.Fatal(err)
	}
	if s.stats, err = gen.Generate(cfg, p); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s.files = filepath.Join(t.TempDir(), "files")
	if _, err := gen.WriteFiles(s.files, cfg); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(t.TempDir(), "deid.yaml")
	writeFile(t, s.conf, fmt.Sprintf("settings_topic: %s\ndead_letters:\n  topic: %s\npipeline:\n  idle_timeout: 5s\n  checkpoint_interval: 200ms\n", s.settings, s.dlq))
	return s
}

// fileModeDatasets runs the sample's files through file mode with bin and
// returns the dataset files, the reference a Kafka run must equal.
func (s kafkaSample) fileModeDatasets(t *testing.T, bin string, env []string) map[string]string {
	t.Helper()
	fileOut := filepath.Join(t.TempDir(), "file-out")
	if out, err := runProcess(bin, env, "run", "--config", s.conf, "--input", s.files, "--settings",
		filepath.Join(s.files, gen.SettingsFileName), "--out", fileOut); err != nil {
		t.Fatalf("file mode: %v\n%s", err, out)
	}
	want := datasetFiles(t, fileOut)
	if len(want) == 0 {
		t.Fatal("file mode wrote no dataset")
	}
	return want
}

func (s kafkaSample) args(c *kafkatest.Cluster, out, state string) []string {
	return []string{"run", "--config", s.conf, "--brokers", joinComma(c.Brokers), "--topics", s.events,
		"--group", s.group, "--out", out, "--state-dir", state, "--stop-at-end"}
}

// TestKafkaModeEqualsFileMode consumes a sample from Kafka and the same
// sample from files: one code path, so the datasets must be byte-identical,
// the exclusion log must hold the same entries, and the malformed records
// must be on the dead-letter topic with their reason and position.
func TestKafkaModeEqualsFileMode(t *testing.T) {
	if testing.Short() {
		t.Skip("an end-to-end run in both modes; not with -short")
	}
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Setenv("DEID_PSEUDONYM_KEY", "kafka-test-key-0123456789")
		cfg := gen.DefaultConfig()
		cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 5, 30_000, 2, 150
		s := produceSample(t, c, cfg)

		fileOut := filepath.Join(t.TempDir(), "file-out")
		deid(t, "run", "--config", s.conf, "--input", s.files, "--settings", filepath.Join(s.files, gen.SettingsFileName), "--out", fileOut)
		kafkaOut := filepath.Join(t.TempDir(), "kafka-out")
		// The Kafka run anchors its commits to a topic, another trust
		// domain than the output's disk.
		anchorTopic := kafkatest.Name(t, "anchors")
		kafkatest.CreateTopic(t, c.Brokers, anchorTopic, 1, false)
		b, err := os.ReadFile(s.conf)
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(t.TempDir(), "deid-anchored.yaml")
		writeFile(t, conf, string(b)+"anchors:\n  topic: "+anchorTopic+"\n")
		args := s.args(c, kafkaOut, filepath.Join(t.TempDir(), "state"))
		args[2] = conf // --config
		deid(t, args...)

		want := datasetFiles(t, fileOut)
		if len(want) == 0 {
			t.Fatal("file mode wrote no dataset")
		}
		if diff := cmp.Diff(want, datasetFiles(t, kafkaOut)); diff != "" {
			t.Errorf("Kafka-mode datasets differ from file mode (-file +kafka):\n%s", diff)
		}
		excluded, _ := dispositions(t, kafkaOut)
		byReason := countValues(excluded)
		if diff := cmp.Diff(s.stats.Expected.Excluded, byReason); diff != "" {
			t.Errorf("exclusions by reason (-want +got):\n%s", diff)
		}
		letters := readTopic(t, c.Brokers, s.dlq)
		byCode := map[string]int64{}
		for _, m := range letters {
			h := headers(m)
			byCode[h[kafkadlq.HeaderReason]]++
			if h[kafkadlq.HeaderSourceTopic] != s.events || h[kafkadlq.HeaderSourceOffset] == "" {
				t.Errorf("dead letter without its source position: %v", h)
			}
			var l deadletter.Line
			if err := json.Unmarshal(m.Value, &l); err != nil || len(l.SHA256) != 64 || l.Value != nil || l.Reason != h[kafkadlq.HeaderReason] {
				t.Errorf("dead letter value %.200q (%v): want its record's length and SHA-256 as JSON, not its bytes", m.Value, err)
			}
		}
		if diff := cmp.Diff(s.stats.Expected.DeadLetters, byCode); diff != "" {
			t.Errorf("dead letters by reason (-want +got):\n%s", diff)
		}

		// The anchors on the topic, dumped to a file, verify the output.
		var dump bytes.Buffer
		for _, m := range readTopic(t, c.Brokers, anchorTopic) {
			dump.Write(m.Value)
			dump.WriteByte('\n')
		}
		anchorFile := filepath.Join(t.TempDir(), "anchors.ndjson")
		writeFile(t, anchorFile, dump.String())
		code, stdout, _ := deidExit("verify", kafkaOut, "--anchors", anchorFile)
		if code != 0 || !strings.Contains(stdout, "anchored windows and") || strings.Contains(stdout, "all 0 anchored windows") {
			t.Errorf("the Kafka run's output does not verify against the anchors on its topic: exit %d\n%s", code, stdout)
		}
	})
}

func headers(m kafkago.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// readTopic reads every message of a one-partition topic.
func readTopic(t *testing.T, brokers []string, topic string) []kafkago.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafkago.Message
	for int64(len(msgs)) < last {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := conn.ReadBatch(1, 10<<20)
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Seek(int64(len(msgs)), kafkago.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

func joinComma(s []string) string { return string(bytes.Join(toBytes(s), []byte(","))) }

func toBytes(s []string) [][]byte {
	b := make([][]byte, len(s))
	for i := range s {
		b[i] = []byte(s[i])
	}
	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
