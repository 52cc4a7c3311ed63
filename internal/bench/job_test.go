package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/internal/s3test"
)

func TestJobRecordsReadsAnInstancesSummary(t *testing.T) {
	line := "deid v1: kafka mode, one instance of a job, 2 partitions here, 40123 records in 1.5s, 3 windows published here, policy 417c\n"
	m := jobRecordsRe.FindStringSubmatch(line)
	if m == nil || m[1] != "40123" {
		t.Fatalf("jobRecordsRe on %q = %v, want 40123", line, m)
	}
	if jobRecordsRe.MatchString("deid v1: kafka mode, 2 partitions, 40123 records in 1.5s") {
		t.Error("jobRecordsRe matches the summary of a run that is no job")
	}
}

func TestJobConfigScalesOutOnTheS3Server(t *testing.T) {
	dir := t.TempDir()
	k := newKafkaTopics([]string{"127.0.0.1:19092"}, "deid-bench.x", dir)
	if err := k.writeConfig(); err != nil {
		t.Fatal(err)
	}
	so := &s3Out{config: filepath.Join(dir, "s3.yaml")}
	if err := os.WriteFile(so.config, []byte("storage:\n  s3:\n    endpoint: http://127.0.0.1:19000\n    region: us-east-1\n    force_path_style: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := newJobEnv(k, so)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		SettingsTopic string `yaml:"settings_topic"`
		DeadLetters   struct {
			Topic string `yaml:"topic"`
		} `yaml:"dead_letters"`
		Secrets struct {
			PseudonymKeyFile string `yaml:"pseudonym_key_file"`
		} `yaml:"secrets"`
		Kafka struct {
			ScaleOut       bool          `yaml:"scale_out"`
			SessionTimeout time.Duration `yaml:"session_timeout"`
		} `yaml:"kafka"`
		Storage struct {
			LeaseTTL time.Duration `yaml:"lease_ttl"`
			S3       struct {
				Endpoint       string `yaml:"endpoint"`
				Region         string `yaml:"region"`
				ForcePathStyle bool   `yaml:"force_path_style"`
			} `yaml:"s3"`
		} `yaml:"storage"`
	}
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !cfg.Kafka.ScaleOut || cfg.Kafka.SessionTimeout != jobSessionTimeout || cfg.Storage.LeaseTTL != jobLeaseTTL ||
		cfg.Storage.S3.Endpoint != "http://127.0.0.1:19000" || cfg.SettingsTopic != k.Settings || cfg.Secrets.PseudonymKeyFile == "" {
		t.Errorf("job config = %+v\n%s", cfg, b)
	}
}

// A job of two instances on the real broker and S3 server reads the whole
// input, leaves partial blobs, and a kill of one is measured as a takeover.
func TestAJobRunReadsEverythingAndMeasuresATakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs deid processes against the real broker and S3 server; not with -short")
	}
	c := kafkatest.Real(t)
	srv := s3test.Require(t)
	srv.Setenv(t)
	dir := t.TempDir()
	deid := filepath.Join(dir, "deid")
	if out, err := exec.Command("go", "build", "-o", deid, "github.com/mya/deid/cmd/deid").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := smallGen()
	g.Events, g.Partitions = 300_000, 3
	in, err := Prepare(t.TempDir(), g, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k := newKafkaTopics(c.Brokers, kafkatest.Name(t, "deid-bench"), dir)
	defer k.drop()
	if err := k.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if err := k.load(ctx, in.Settings, in.Events); err != nil {
		t.Fatal(err)
	}
	so, err := prepareS3(ctx, srv.Endpoint, dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newJobEnv(k, so)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Deid: deid}

	r, err := e.runJob(ctx, cfg, in, 2, "job", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RSS) != 2 || r.CPU() <= 0 || r.MaxRSS <= 0 {
		t.Errorf("job of 2: %d instances measured, CPU %v, peak RSS %d", len(r.RSS), r.CPU(), r.MaxRSS)
	}
	if b := r.Blobs; b == nil || b.Count == 0 || b.Windows == 0 || b.Bytes == 0 || b.PerWindow <= 0 {
		t.Errorf("blobs = %+v, want the job's partial blobs sized", b)
	}
	t.Logf("job of 2: %.2fs wall, %.2fs CPU; blobs %+v", r.Wall.Seconds(), r.CPU().Seconds(), *r.Blobs)

	r, err = e.runTakeover(ctx, cfg, in, 2)
	if err != nil {
		t.Fatal(err)
	}
	to := r.Takeover
	// At least the session timeout: until then the group waits for the
	// killed instance.
	if to == nil || to.Seconds < jobSessionTimeout.Seconds()/2 || to.Wall < to.Seconds {
		t.Fatalf("takeover = %+v, want at least about the session timeout %s", to, jobSessionTimeout)
	}
	// The survivor restores the partitions it takes over from their
	// checkpoints, unless none was committed yet.
	t.Logf("takeover: %+v", *to)
}

func TestPrintShowsTheJobsFigures(t *testing.T) {
	var b strings.Builder
	printJob(&b, JobRun{Measured: true, Instances: 3, Partitions: 6, SessionTimeout: 6, LeaseTTL: 6,
		InstanceRSSMB: []float64{300, 250, 240},
		Blobs:         &BlobFigures{Count: 36, Windows: 6, Bytes: 6e6, PerWindow: 1e6, MaxBlob: 4e5},
		Takeover:      &Takeover{Seconds: 6.5, Restores: 2, RestoreSeconds: 0.08, Wall: 12}})
	for _, want := range []string{"3 instances on 6 partitions", "300, 250, 240", "36 for 6 dataset windows", "1000 KB per window",
		"takeover after kill -9: 6.5s", "2 partitions restored in 0.08s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printJob wrote:\n%s\nwant %q in it", b.String(), want)
		}
	}
	b.Reset()
	printJob(&b, JobRun{Note: "left out (why)"})
	if !strings.Contains(b.String(), "left out (why)") {
		t.Errorf("printJob of a job left out wrote %q", b.String())
	}
}
