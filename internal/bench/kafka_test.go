package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/mya/deid/internal/kafkatest"
)

func TestDeidKafkaArgsRunAFreshGroupToTheEnd(t *testing.T) {
	k := newKafkaTopics([]string{"127.0.0.1:19092", "127.0.0.1:19094"}, "deid-bench.x", "/work")
	got := k.deidArgs(k.group("deid", 0), "/work/out", "/work/state")
	want := []string{"run", "--config", "/work/deid-kafka.yaml", "--brokers", "127.0.0.1:19092,127.0.0.1:19094",
		"--topics", "deid-bench.x.events", "--group", "deid-bench.x.deid.1", "--out", "/work/out",
		"--state-dir", "/work/state", "--stop-at-end", "--log-level", "error"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deid's arguments (-want +got):\n%s", diff)
	}
	groups := map[string]bool{}
	for _, c := range []string{"deid", "consumer"} {
		for rep := range 3 {
			groups[k.group(c, rep)] = true
		}
	}
	if len(groups) != 6 {
		t.Errorf("groups = %v, want a fresh one for every run of every contender", groups)
	}
}

func TestDeidConfigNamesTheTopicsAndAKeyFile(t *testing.T) {
	var cfg struct {
		SettingsTopic string `yaml:"settings_topic"`
		DeadLetters   struct {
			Topic string `yaml:"topic"`
		} `yaml:"dead_letters"`
		Secrets struct {
			PseudonymKeyFile string `yaml:"pseudonym_key_file"`
		} `yaml:"secrets"`
	}
	dec := yaml.NewDecoder(strings.NewReader(deidConfig("b.settings", "b.dead-letters", "/tmp/a dir/k.key")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.SettingsTopic != "b.settings" || cfg.DeadLetters.Topic != "b.dead-letters" ||
		cfg.Secrets.PseudonymKeyFile != "/tmp/a dir/k.key" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestWriteConfigWritesAPrivateKey(t *testing.T) {
	dir := t.TempDir()
	k := newKafkaTopics([]string{"127.0.0.1:1"}, "p", dir)
	if err := k.writeConfig(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "deid-kafka.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 65 {
		t.Errorf("key file: mode %v, %d bytes; want 0600 and 64 hex digits", fi.Mode().Perm(), fi.Size())
	}
	b, _ := os.ReadFile(k.Config)
	if !bytes.Contains(b, []byte(`"`+filepath.Join(dir, "deid-kafka.key")+`"`)) {
		t.Errorf("config does not name the key file:\n%s", b)
	}
}

func TestConsumerArgsReadBack(t *testing.T) {
	c := ConsumerConfig{Brokers: []string{"127.0.0.1:1", "127.0.0.1:2"}, Topic: "t", Group: "g"}
	args := c.Args()
	if args[0] != BareConsumerCommand {
		t.Fatalf("args = %q, want the subcommand first", args)
	}
	got, err := ParseConsumerArgs(args[1:])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"--topic", "t", "--group", "g"}, {"--brokers", "b", "--group", "g"},
		{"--brokers", "b", "--topic", "t"}, {"--brokers", "b", "--topic", "t", "--group", "g", "extra"}} {
		if _, err := ParseConsumerArgs(bad); err == nil {
			t.Errorf("ParseConsumerArgs(%q) = nil error, want one", bad)
		}
	}
}

func TestLoadArgsReadBack(t *testing.T) {
	c := LoadConfig{Brokers: []string{"127.0.0.1:1"}, Prefix: "p", Settings: "s.ndjson", Events: []string{"e0", "e1"}}
	args := c.Args()
	if args[0] != LoadCommand {
		t.Fatalf("args = %q, want the subcommand first", args)
	}
	got, err := ParseLoadArgs(args[1:])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if _, err := ParseLoadArgs([]string{"--brokers", "b", "--prefix", "p", "--settings", "s"}); err == nil {
		t.Error("ParseLoadArgs without events files = nil error, want one")
	}
	if err := LoadKafka(context.Background(), LoadConfig{Brokers: []string{"192.0.2.1:9092"}, Prefix: "p"}); err == nil ||
		!strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("LoadKafka off this machine = %v, want a refusal", err)
	}
}

func TestParseConsumeCounts(t *testing.T) {
	c, err := parseConsumeCounts(`{"records":2000000,"value_bytes":979187328,"partitions":2,"fetches":1000}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ConsumeCounts{Records: 2_000_000, Bytes: 979_187_328, Partitions: 2, Fetches: 1000}); c != want {
		t.Errorf("counts = %+v, want %+v", c, want)
	}
	if _, err := parseConsumeCounts("panic: oops"); err == nil {
		t.Error("parseConsumeCounts of garbage = nil error, want one")
	}
}

func TestDeidRecordsReadsTheSummary(t *testing.T) {
	out := "deid v1.2: kafka mode, 2 partitions, 2000000 records in 9.1s (219000 records/s), policy 0a1b\n\ncampaign_metrics …"
	n, err := deidRecords(out)
	if err != nil || n != 2_000_000 {
		t.Errorf("deidRecords = %d, %v; want 2000000", n, err)
	}
	if n, err := deidRecords("deid dev: kafka mode, 1 partition, 7 records in 1s (7 records/s)"); err != nil || n != 7 {
		t.Errorf("deidRecords (one partition) = %d, %v; want 7", n, err)
	}
	if _, err := deidRecords("something else"); err == nil {
		t.Error("deidRecords without a summary = nil error, want one")
	}
}

func TestKafkaRatioIsDeidOverTheConsumerBesideTheTarget(t *testing.T) {
	// deid takes 2 s and 5 s where the consumer takes 1 s and 4 s: 0.5 and 0.8.
	dk := []Sample{{Wall: 2 * time.Second, User: 2 * time.Second}, {Wall: 5 * time.Second, User: 4 * time.Second}}
	bare := []Sample{{Wall: time.Second, User: time.Second}, {Wall: 4 * time.Second, User: time.Second}}
	res := &Result{Contenders: map[string]Figures{Deid: summarize(dk, 1000, 1000)},
		Ratios: map[string]Ratio{KafkaRatio: ratios(dk, bare)}}
	r := res.Ratios[KafkaRatio]
	if want := (Spread{0.65, 0.5, 0.8}); r.Wall != want {
		t.Errorf("Wall = %+v, want %+v", r.Wall, want)
	}
	if want := (Spread{0.375, 0.25, 0.5}); r.CPU != want {
		t.Errorf("CPU = %+v, want %+v", r.CPU, want)
	}
	var found bool
	for _, tg := range targets(res) {
		if strings.Contains(tg.Name, "Kafka") {
			found = true
			if tg.Want != KafkaTarget || tg.Got != 0.65 || tg.Met {
				t.Errorf("Kafka target = %+v, want 0.65 of %.2f, not met", tg, KafkaTarget)
			}
		}
	}
	if !found {
		t.Error("no Kafka-mode target")
	}
}

func TestPrintShowsKafkaModeAndItsRatio(t *testing.T) {
	f := summarize([]Sample{{Wall: time.Second, User: time.Second, MaxRSS: 1 << 20}}, 1000, 1000)
	r := Ratio{Wall: Spread{0.9, 0.85, 0.95}, CPU: Spread{0.3, 0.2, 0.4}}
	res := &Result{Input: &Input{Lines: 1000, Bytes: 400_000, Partitions: 2}, Reps: 1,
		Contenders: map[string]Figures{Deid: f, DeidKafka: f, KafkaConsumer: f},
		Ratios:     map[string]Ratio{KafkaRatio: r, DeidKafka + "_vs_deid": {Wall: Spread{0.5, 0.5, 0.5}}},
		Kafka:      KafkaRun{Measured: true, Ratio: &r, Target: KafkaTarget}}
	res.Targets = targets(res)
	var out bytes.Buffer
	Print(&out, res)
	for _, want := range []string{"deid (Kafka mode)  ", "bare kafka-go consumer", "deid (Kafka mode) / bare consumer:",
		"0.90× [0.85–0.95] throughput, 0.30× [0.20–0.40] per CPU-second (target ≥ 0.80)",
		"yes  deid Kafka-mode throughput / bare kafka-go consumer", "deid (Kafka mode) / deid (file mode):      0.50×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}

// With --deid-alt the other build runs in Kafka mode too, beside deid's
// Kafka-mode runs, and the table gives its row and its ratio.
func TestPrintShowsTheOtherBuildInKafkaMode(t *testing.T) {
	f := summarize([]Sample{{Wall: time.Second, User: time.Second, MaxRSS: 1 << 20}}, 1000, 1000)
	res := &Result{Input: &Input{Lines: 1000, Bytes: 400_000, Partitions: 2}, Reps: 1,
		Contenders: map[string]Figures{Deid: f, DeidAlt: f, DeidKafka: f, DeidKafkaAlt: f, KafkaConsumer: f},
		Ratios: map[string]Ratio{DeidKafkaAlt + "_vs_" + DeidKafka: ratios(
			[]Sample{{Wall: time.Second, User: time.Second}}, []Sample{{Wall: 1100 * time.Millisecond, User: 1200 * time.Millisecond}})}}
	var out bytes.Buffer
	Print(&out, res)
	for _, want := range []string{"deid (Kafka), other build  ", "other build / deid, Kafka mode:",
		"1.10× [1.10–1.10] throughput, 1.20× [1.20–1.20] per CPU-second"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckLoopbackOnlyAcceptsThisMachine(t *testing.T) {
	if err := checkLoopback([]string{"127.0.0.1:19092", "[::1]:9092"}); err != nil {
		t.Errorf("loopback brokers refused: %v", err)
	}
	for _, bad := range [][]string{nil, {"10.0.0.1:9092"}, {"kafka:9092"}, {"127.0.0.1"}} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want an error", bad)
		}
	}
}

func TestWorkspaceKeyIsTheLinesWorkspaceID(t *testing.T) {
	for line, want := range map[string]string{
		`{"workspace_id":"ws_1","deleted":true}`:                   "ws_1",
		`{"event_id":"e","workspace_id":"ws_2a","payload":{}}`:     "ws_2a",
		`{"event_id":"e","workspace_id":42}`:                       "",
		`{"event_id":"e","workspace_id":"`:                         "",
		`not json`:                                                 "",
		`{"workspace_id":"","ai_training_opt_out":"yes"}`:          "",
		`{"payload":{"workspace_id":"ws_inner"},"schema":3} extra`: "ws_inner",
	} {
		if got := string(workspaceKey([]byte(line))); got != want {
			t.Errorf("workspaceKey(%s) = %q, want %q", line, got, want)
		}
	}
}

func TestEachLineSplitsAsTheFileSource(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 3<<20) // longer than the read buffer
	for name, tc := range map[string]struct {
		text string
		want []string
	}{
		"trailing newline":       {"a\nb\n", []string{"a", "b"}},
		"no trailing newline":    {"a\nb", []string{"a", "b"}},
		"an empty line counts":   {"a\n\nb\n", []string{"a", "", "b"}},
		"a line over the buffer": {"a\n" + long + "\nb\n", []string{"a", long, "b"}},
		"empty file":             {"", nil},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			os.WriteFile(path, []byte(tc.text), 0o644)
			var got []string
			err := eachLine(context.Background(), path, func(line []byte) error {
				got = append(got, string(line))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff[:min(len(diff), 500)])
			}
		})
	}
}

func TestBareConsumerCountsEveryRecord(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "events")
	kafkatest.CreateTopic(t, c.Brokers, topic, 3, false)
	var want, size int64
	for p := range int32(3) {
		msgs := kafkatest.Values(p, "value", 500*int(p+1))
		kafkatest.Produce(t, c.Brokers, topic, msgs)
		for _, m := range msgs {
			want++
			size += int64(len(m.Value))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := BareConsumer(ctx, ConsumerConfig{Brokers: c.Brokers, Topic: topic, Group: kafkatest.Name(t, "g")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != want || got.Bytes != size || got.Partitions != 3 {
		t.Errorf("counts = %+v, want %d records of %d bytes in 3 partitions", got, want, size)
	}
}

func TestLoadPutsEachFileInItsPartitionInOrder(t *testing.T) {
	c := kafkatest.Fake(t)
	in, err := Prepare(t.TempDir(), smallGen(), func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	k := newKafkaTopics(c.Brokers, kafkatest.Name(t, "deid-bench"), t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.load(ctx, in.Settings, in.Events); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, c.Brokers, k.Events)
	var i int
	for p, f := range in.Events {
		eachLine(ctx, f, func(line []byte) error {
			if i >= len(recs) || recs[i].Partition != int32(p) || !bytes.Equal(recs[i].Value, line) {
				t.Fatalf("record %d is not line %d of events file %d", i, i, p)
			}
			i++
			return nil
		})
	}
	if i != len(recs) || int64(i) != in.Lines {
		t.Errorf("%d records for %d lines", len(recs), in.Lines)
	}
	settings := kafkatest.ReadAll(t, c.Brokers, k.Settings)
	for _, m := range settings {
		if !bytes.Equal(m.Key, workspaceKey(m.Value)) || m.Key == nil {
			t.Fatalf("settings record %s keyed %q, want its workspace id", m.Value, m.Key)
		}
	}
	if len(settings) == 0 {
		t.Error("the settings topic is empty")
	}
	n, err := BareConsumer(ctx, ConsumerConfig{Brokers: c.Brokers, Topic: k.Events, Group: k.group("consumer", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if n.Records != in.Lines || n.Partitions != in.Partitions {
		t.Errorf("the bare consumer counted %+v, want %d records in %d partitions", n, in.Lines, in.Partitions)
	}
}
