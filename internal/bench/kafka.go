package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	kafka "github.com/segmentio/kafka-go"

	kafkasrc "github.com/mya/deid/sources/kafka"
)

// Kafka-mode contender names, in the results.
const (
	DeidKafka = "deid_kafka"
	// DeidKafkaAlt is the other build (--deid-alt) in Kafka mode.
	DeidKafkaAlt  = "deid_kafka_alt"
	KafkaConsumer = "kafka_consumer"
)

// KafkaTarget is issue 5's target for Kafka mode: deid's throughput at
// least this share of a bare kafka-go consumer's on the same topic.
const KafkaTarget = 0.8

// KafkaRatio is the key in Result.Ratios of deid in Kafka mode against the
// bare consumer.
const KafkaRatio = DeidKafka + "_vs_" + KafkaConsumer

// KafkaRun describes the Kafka-mode measurement in the results ("kafka").
// The figures of both contenders are in Result.Contenders, their run-by-run
// ratio in Result.Ratios as well as here, beside the target.
type KafkaRun struct {
	// Measured is false when Kafka mode was left out; Note says why, or
	// what was measured.
	Measured bool     `json:"measured"`
	Note     string   `json:"note"`
	Brokers  []string `json:"brokers,omitempty"`
	// EventsTopic has one partition per input file, each file in its own
	// partition, in order; SettingsTopic is compacted.
	EventsTopic   string `json:"events_topic,omitempty"`
	SettingsTopic string `json:"settings_topic,omitempty"`
	Partitions    int    `json:"partitions,omitempty"`
	// ProduceSeconds is how long loading the input onto the broker took,
	// once per benchmark run, not timed as a contender.
	ProduceSeconds float64 `json:"produce_seconds,omitempty"`
	// Fetch is what both consumers ask of each fetch: deid's defaults.
	Fetch *FetchSettings `json:"fetch,omitempty"`
	// Records is what every run of either consumer read: the input's lines.
	Records int64 `json:"records,omitempty"`
	// Ratio is deid's throughput in Kafka mode over the bare consumer's,
	// run by run; Target is what it should reach.
	Ratio  *Ratio  `json:"ratio,omitempty"`
	Target float64 `json:"target,omitempty"`
}

// FetchSettings are the fetch parameters of kafka-go's batch reads.
type FetchSettings struct {
	MinBytes  int   `json:"min_bytes"`
	MaxBytes  int   `json:"max_bytes"`
	MaxWaitMS int64 `json:"max_wait_ms"`
}

// loadKafka puts the input on the broker for the Kafka-mode contenders,
// once per benchmark run, and describes it in res.Kafka. The topics it
// returns, even with an error, are the caller's to drop.
func loadKafka(ctx context.Context, cfg Config, in *Input, res *Result, work string, logf func(string, ...any)) (*kafkaTopics, error) {
	if err := checkLoopback(cfg.Brokers); err != nil {
		return nil, err
	}
	k := newKafkaTopics(cfg.Brokers, kafkaPrefix(res.Started), work)
	if err := k.writeConfig(); err != nil {
		return nil, err
	}
	logf("bench: producing the input to %s (%d partitions) and %s on %s (once; not timed)", k.Events,
		len(in.Events), k.Settings, strings.Join(k.Brokers, ","))
	// In a child process: on Linux a child's peak RSS starts from the peak
	// of the process that started it, so the benchmark keeps its own small
	// (producing takes ~100 MiB of buffers).
	load := LoadConfig{Brokers: k.Brokers, Prefix: k.prefix, Settings: in.Settings, Events: in.Events}
	s, err := Measure(ctx, "", nil, cfg.Self, load.Args()...)
	if err != nil {
		return k, err
	}
	took := s.Wall
	logf("bench: produced %s events and the settings in %.1fs", group(in.Lines), took.Seconds())
	fetch := deidFetch()
	res.Kafka = KafkaRun{Measured: true, Brokers: k.Brokers, EventsTopic: k.Events, SettingsTopic: k.Settings,
		Partitions: len(in.Events), ProduceSeconds: took.Seconds(), Fetch: &fetch, Records: in.Lines,
		Note: "deid run --stop-at-end in Kafka mode (fresh group, output and state directory each run) against " +
			"deid-bench bare-consumer (kafka-go consumer group and Conn batch reads with deid's fetch settings, " +
			"counting records); CPU time and peak RSS are the consumers' own, not the broker's"}
	return k, nil
}

// measureDeidKafka runs the deid binary in Kafka mode once, end to end, on
// a group, output and state directory named after name and rep, and checks
// that it read every line of the input.
func measureDeidKafka(ctx context.Context, deid, name string, k *kafkaTopics, in *Input, work string, rep int) (Sample, error) {
	out := filepath.Join(work, fmt.Sprintf("%s-kafka-%d", name, rep))
	state := out + "-state"
	defer os.RemoveAll(out)
	defer os.RemoveAll(state)
	s, err := Measure(ctx, "", nil, deid, k.deidArgs(k.group(name, rep), out, state)...)
	if err != nil {
		return s, err
	}
	n, err := deidRecords(s.Stdout)
	if err != nil {
		return s, err
	}
	if n != in.Lines {
		return s, fmt.Errorf("deid in Kafka mode read %d records; the input has %d lines", n, in.Lines)
	}
	return s, nil
}

// measureConsumer runs the bare consumer once, as a child process, and
// checks that it counted every line of the input.
func measureConsumer(ctx context.Context, cfg Config, k *kafkaTopics, in *Input, rep int) (Sample, error) {
	c := ConsumerConfig{Brokers: k.Brokers, Topic: k.Events, Group: k.group("consumer", rep)}
	s, err := Measure(ctx, "", nil, cfg.Self, c.Args()...)
	if err != nil {
		return s, err
	}
	n, err := parseConsumeCounts(s.Stdout)
	if err != nil {
		return s, err
	}
	if n.Records != in.Lines {
		return s, fmt.Errorf("the bare consumer counted %d records in %d partitions; the input has %d lines",
			n.Records, n.Partitions, in.Lines)
	}
	return s, nil
}

// deidFetch returns the fetch settings deid runs with by default, which the
// bare consumer copies.
func deidFetch() FetchSettings {
	kc := kafkasrc.DefaultConfig()
	return FetchSettings{MinBytes: kc.FetchMinBytes, MaxBytes: kc.FetchMaxBytes, MaxWaitMS: kc.FetchMaxWait.Milliseconds()}
}

// kafkaTopics is the benchmark input on the broker, and what deid needs to
// read it.
type kafkaTopics struct {
	Brokers                       []string
	Events, Settings, DeadLetters string
	// Config is deid's YAML configuration for Kafka mode.
	Config string
	// prefix starts every topic and group name of this benchmark run.
	prefix string
}

// newKafkaTopics names the topics of one benchmark run after prefix; deid's
// configuration goes into work.
func newKafkaTopics(brokers []string, prefix, work string) *kafkaTopics {
	return &kafkaTopics{Brokers: brokers, Events: prefix + ".events", Settings: prefix + ".settings",
		DeadLetters: prefix + ".dead-letters", Config: filepath.Join(work, "deid-kafka.yaml"), prefix: prefix}
}

// kafkaPrefix is a name unique to one benchmark run, so that runs against a
// long-lived broker never collide.
func kafkaPrefix(started time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return "deid-bench." + started.Format("20060102T150405Z") + "." + hex.EncodeToString(b[:])
}

// group names a fresh consumer group for one run of a contender: neither
// finds offsets committed by an earlier run.
func (k *kafkaTopics) group(contender string, rep int) string {
	return fmt.Sprintf("%s.%s.%d", k.prefix, contender, rep+1)
}

// deidArgs are deid's arguments for one run in Kafka mode: a fresh group,
// output and state directory, to the end offsets seen at start.
func (k *kafkaTopics) deidArgs(group, out, state string) []string {
	return []string{"run", "--config", k.Config, "--brokers", strings.Join(k.Brokers, ","), "--topics", k.Events,
		"--group", group, "--out", out, "--state-dir", state, "--stop-at-end", "--log-level", "error"}
}

// deidConfig is deid's configuration for Kafka mode: the topics, and a
// pseudonym key file (checkpoints outlive a Kafka-mode process, so deid
// wants a fixed key). Everything else is deid's defaults; the command line
// adds brokers, topics, group, output and state directory.
func deidConfig(settingsTopic, deadLetters, keyFile string) string {
	return fmt.Sprintf("# deid in Kafka mode, written by deid-bench; everything else is deid's defaults.\n"+
		"settings_topic: %q\ndead_letters:\n  topic: %q\nsecrets:\n  pseudonym_key_file: %q\n",
		settingsTopic, deadLetters, keyFile)
}

// writeConfig writes deid's configuration and a random pseudonym key beside
// it, both for this benchmark run only.
func (k *kafkaTopics) writeConfig() error {
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := strings.TrimSuffix(k.Config, ".yaml") + ".key"
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	return os.WriteFile(k.Config, []byte(deidConfig(k.Settings, k.DeadLetters, keyFile)), 0o644)
}

// checkLoopback refuses brokers off this machine: the benchmark creates,
// fills and deletes topics.
func checkLoopback(brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("no Kafka broker given")
	}
	for _, b := range brokers {
		host, _, err := net.SplitHostPort(b)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("broker %q: the benchmark creates and deletes topics, so it only talks to a broker on 127.0.0.1", b)
		}
	}
	return nil
}

// LoadCommand is the deid-bench subcommand that runs LoadKafka.
const LoadCommand = "load-kafka"

// LoadConfig says what LoadKafka produces where: the topics are named after
// Prefix.
type LoadConfig struct {
	Brokers  []string
	Prefix   string
	Settings string
	Events   []string
}

// Args are deid-bench's arguments to run LoadKafka on c as a child process;
// ParseLoadArgs reads them back.
func (c LoadConfig) Args() []string {
	return append([]string{LoadCommand, "--brokers", strings.Join(c.Brokers, ","), "--prefix", c.Prefix,
		"--settings", c.Settings}, c.Events...)
}

// ParseLoadArgs reads LoadKafka's arguments (after the subcommand's name).
func ParseLoadArgs(args []string) (LoadConfig, error) {
	var c LoadConfig
	fs := flag.NewFlagSet(LoadCommand, flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers on 127.0.0.1, comma-separated")
	fs.StringVar(&c.Prefix, "prefix", "", "the topics' names start with this")
	fs.StringVar(&c.Settings, "settings", "", "the settings file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *brokers == "" || c.Prefix == "" || c.Settings == "" || fs.NArg() == 0 {
		return c, fmt.Errorf("%s: --brokers, --prefix, --settings and the events files are required", LoadCommand)
	}
	c.Brokers, c.Events = strings.Split(*brokers, ","), fs.Args()
	return c, nil
}

// LoadKafka creates the benchmark's topics on c.Brokers (on 127.0.0.1)
// and produces the input into them.
func LoadKafka(ctx context.Context, c LoadConfig) error {
	if err := checkLoopback(c.Brokers); err != nil {
		return err
	}
	return newKafkaTopics(c.Brokers, c.Prefix, "").load(ctx, c.Settings, c.Events)
}

// load creates the topics and produces the input into them with the
// producer of `deid gen --brokers`: events file p into partition p of the
// events topic, line by line in order, and the settings file into the
// compacted settings topic. A record is keyed by its line's workspace id,
// as deid gen keys it.
func (k *kafkaTopics) load(ctx context.Context, settings string, events []string) error {
	if err := createTopics(ctx, k.Brokers, []kafka.TopicConfig{
		{Topic: k.Events, NumPartitions: len(events), ReplicationFactor: 1},
		{Topic: k.Settings, NumPartitions: 1, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}},
		{Topic: k.DeadLetters, NumPartitions: 1, ReplicationFactor: 1},
	}); err != nil {
		return err
	}
	kc := kafkasrc.DefaultConfig()
	kc.Brokers = k.Brokers
	p, err := kafkasrc.NewProducer(kc, k.Events, k.Settings)
	if err != nil {
		return err
	}
	err = eachLine(ctx, settings, func(line []byte) error {
		key := workspaceKey(line)
		if key == nil {
			return fmt.Errorf("%s: a settings line without a workspace id (a compacted topic needs keys): %.80q", settings, line)
		}
		return p.Setting(key, line)
	})
	for part, f := range events {
		if err != nil {
			break
		}
		err = eachLine(ctx, f, func(line []byte) error { return p.Event(part, workspaceKey(line), line) })
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	return err
}

// drop deletes the topics, best effort: the input takes as much room on the
// broker as on disk.
func (k *kafkaTopics) drop() {
	deleteTopics(k.Brokers, k.Events, k.Settings, k.DeadLetters)
}

// deleteTopics deletes topics, best effort: the benchmark's own, at its end.
func deleteTopics(brokers []string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
}

// createTopics creates topics and waits until each partition has a leader.
func createTopics(ctx context.Context, brokers []string, topics []kafka.TopicConfig) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Topic
		if err := resp.Errors[t.Topic]; err != nil {
			return fmt.Errorf("creating topic %s: %w", t.Topic, err)
		}
	}
	for {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && leadersReady(md, topics) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %s have no leader for every partition: %w", strings.Join(names, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leadersReady tells whether md shows every partition of topics with a
// leader.
func leadersReady(md *kafka.MetadataResponse, topics []kafka.TopicConfig) bool {
	want := map[string]int{}
	for _, t := range topics {
		want[t.Topic] = t.NumPartitions
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) != want[t.Name] {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
		delete(want, t.Name)
	}
	return len(want) == 0
}

// eachLine calls fn with every line of the file at path (gzipped when it
// ends in .gz), without its newline, as deid's file source splits them: an
// empty line is a record, the end of the file does not start another.
func eachLine(ctx context.Context, path string, fn func(line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for n := 0; ; n++ {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		line := chunk
		if long != nil {
			line, long = append(long, chunk...), nil
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if err == nil || len(line) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// workspaceKey returns the value of line's "workspace_id" string field,
// which the generator writes without spaces, or nil when there is none.
func workspaceKey(line []byte) []byte {
	const field = `"workspace_id":"`
	i := bytes.Index(line, []byte(field))
	if i < 0 {
		return nil
	}
	rest := line[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return nil
	}
	return rest[:j]
}

// deidRecordsRe finds the records read in the first line deid run prints:
// "deid v: kafka mode, 2 partitions, 2000000 records in 1.2s (…)".
var deidRecordsRe = regexp.MustCompile(`mode, \d+ partitions?, (\d+) records in `)

// deidRecords returns how many records deid's summary says it read.
func deidRecords(stdout string) (int64, error) {
	m := deidRecordsRe.FindStringSubmatch(stdout)
	if m == nil {
		return 0, fmt.Errorf("no record count in deid's summary: %.200q", stdout)
	}
	return strconv.ParseInt(m[1], 10, 64)
}
