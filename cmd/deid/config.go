package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/kafkadlq"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sources/file"
	kafkasrc "github.com/mya/deid/sources/kafka"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/consent"
	"github.com/mya/deid/transforms/decode"
)

// Modes of a run.
const (
	modeFile  = "file"
	modeKafka = "kafka"
)

// Config is deid's YAML configuration: one section per package, each
// package's Config decoded as it is. Unknown keys are errors.
type Config struct {
	// Mode is "file" (NDJSON files, to the end of input).
	Mode string `yaml:"mode"`
	// Out is the output directory.
	Out string `yaml:"out"`
	// StateDir keeps checkpoints, so that a run resumes where it stopped.
	// Optional in file mode; required for streaming.
	StateDir string                    `yaml:"state_dir"`
	Pipeline pipeline.Config           `yaml:"pipeline"`
	Input    file.Config               `yaml:"input"`
	Decode   decode.Config             `yaml:"decode"`
	Consent  consent.Config            `yaml:"consent"`
	Parquet  parquet.Config            `yaml:"parquet"`
	Datasets []aggregate.DatasetConfig `yaml:"datasets"`
	Secrets  SecretsConfig             `yaml:"secrets"`
	// Anchors is the anchor log outside the output (--anchors).
	Anchors anchors.Config `yaml:"anchors"`

	// Exclusions configures the exclusion log's segments: their Parquet
	// codec (exclusions.compression).
	Exclusions exclusions.Config `yaml:"exclusions"`

	// Kafka mode.
	Kafka kafkasrc.Config `yaml:"kafka"`
	// SettingsTopic is the compacted topic of workspace settings (contract §4).
	SettingsTopic string          `yaml:"settings_topic"`
	DeadLetters   kafkadlq.Config `yaml:"dead_letters"`
	// ShutdownTimeout bounds a graceful stop after SIGTERM/SIGINT.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// HTTPAddr serves /metrics, /healthz and /readyz when set, e.g. ":9090".
	HTTPAddr string `yaml:"http_addr"`
	// MemoryLimit is a soft limit on the process's memory
	// (pipeline.SetMemoryLimit: Go's runtime/debug.SetMemoryLimit, less the
	// dedup tables kept outside the heap): the collector works harder as the
	// heap nears it, so that resident memory follows the live state rather
	// than twice it. 0 leaves Go's default (no limit, or GOMEMLIMIT).
	MemoryLimit byteSize `yaml:"memory_limit"`
	// Storage says how to reach an out, state_dir (or anchors.file) given as an
	// s3://bucket/prefix URL: endpoint, region, addressing, retries.
	// Operational, not policy: where the bytes go, never what they are.
	// Credentials come only from the standard AWS chain.
	Storage objstore.Config `yaml:"storage"`
	// StopAtEnd ends a Kafka run at the high-water marks seen at start
	// (--stop-at-end; for bounded runs and benchmarks).
	StopAtEnd bool `yaml:"-"`
}

// SecretsConfig says where secrets come from: a file or an environment
// variable, never the config file itself. Secrets are never logged.
type SecretsConfig struct {
	// PseudonymKeyFile holds the HMAC key of contract §11.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// PseudonymKeyEnv names the environment variable holding the key.
	PseudonymKeyEnv string `yaml:"pseudonym_key_env"`
	// SigningKeyFile holds the ed25519 private key that signs manifests and
	// exclusion-log segments (deid keygen writes it).
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningKeyEnv names the environment variable holding that key (PEM,
	// or base64 of the 32-byte seed).
	SigningKeyEnv string `yaml:"signing_key_env"`
}

// defaultConfig is what deid runs with no config file: file mode on the
// sample that `deid gen` writes to ./sample, output to ./out.
func defaultConfig() Config {
	in := file.DefaultConfig()
	in.Paths = []string{"sample"}
	cons := consent.DefaultConfig()
	cons.SettingsPath = "sample/settings.ndjson"
	return Config{
		Mode:     modeFile,
		Out:      "out",
		Pipeline: pipeline.DefaultConfig(),
		Input:    in,
		Decode:   decode.DefaultConfig(),
		Consent:  cons,
		Parquet:  parquet.DefaultConfig(),
		Datasets: aggregate.DefaultConfig().Datasets,
		Secrets:  SecretsConfig{PseudonymKeyEnv: "DEID_PSEUDONYM_KEY", SigningKeyEnv: "DEID_SIGNING_KEY"},

		Exclusions:      exclusions.DefaultConfig(),
		Kafka:           kafkasrc.DefaultConfig(),
		SettingsTopic:   "workspace-settings",
		DeadLetters:     kafkadlq.DefaultConfig(),
		ShutdownTimeout: 30 * time.Second,
		Storage:         objstore.DefaultConfig(),
	}
}

// loadConfig returns the defaults overlaid with the YAML file at path (if
// any), strictly decoded: every misspelled key, wrongly typed value and
// empty file is an error naming its YAML path and line (decodeConfig).
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := decodeConfig(path, b, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate reports every problem of every section, each prefixed with its
// YAML path.
func (c *Config) Validate() error {
	var errs []error
	c.Parquet.Dir = c.Out
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// out, state_dir and anchors.file may be s3://bucket/prefix URLs.
	for _, d := range []struct{ key, path string }{{"out", c.Out}, {"state_dir", c.StateDir}, {"anchors.file", c.Anchors.File}} {
		add(checkStorageURL(d.key, d.path))
	}
	add(c.Storage.Validate())
	switch c.Mode {
	case modeFile:
		add(c.Input.Validate())
		if c.Consent.SettingsPath == "" {
			errs = append(errs, errors.New("consent.settings: file mode needs the settings NDJSON file (or pass --settings)"))
		}
	case modeKafka:
		add(c.Kafka.Validate())
		if c.SettingsTopic == "" {
			errs = append(errs, errors.New(`settings_topic: Kafka mode reads consent from the compacted settings topic, e.g. "workspace-settings"`))
		}
		if c.StateDir == "" {
			errs = append(errs, errors.New("state_dir: Kafka mode keeps checkpoints; name a directory (or pass --state-dir)"))
		}
		dl := c.DeadLetters
		dl.Kafka, dl.Group = c.Kafka.Config, c.Kafka.Group
		add(dl.Validate())
		if c.Kafka.ScaleOut {
			// Every instance of a job reads and writes the same state and
			// output: one machine's directory cannot be that.
			for _, d := range []struct{ key, path string }{{"out", c.Out}, {"state_dir", c.StateDir}} {
				if d.path != "" && !isURL(d.path) {
					errs = append(errs, fmt.Errorf("%s: kafka.scale_out needs it on object storage (s3://bucket/prefix) that every instance shares; %q is one machine's directory", d.key, d.path))
				}
			}
			if c.Anchors.File != "" && !isURL(c.Anchors.File) {
				errs = append(errs, fmt.Errorf("anchors.file: with kafka.scale_out every instance commits, so the anchor log must be shared: use anchors.topic or an s3:// anchors.file (got %q)", c.Anchors.File))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("mode: must be %q or %q (got %q)", modeFile, modeKafka, c.Mode))
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 64<<20 {
		errs = append(errs, fmt.Errorf("memory_limit: %s is below the 64MiB deid needs to run; raise it (e.g. 1GiB) or set 0 for no limit", c.MemoryLimit))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: must be positive, e.g. 30s (got %s)", c.ShutdownTimeout))
	}
	add(c.Pipeline.Validate())
	add(c.Decode.Validate())
	add(c.Consent.Validate())
	add(c.Parquet.Validate())
	if c.Out != "" { // an empty out is reported once, by parquet
		c.Exclusions.Dir = c.Out
		add(c.Exclusions.Validate())
	}
	add(aggregate.Config{Datasets: c.Datasets}.Validate())
	add(c.Anchors.Validate(c.Out))
	if c.Anchors.Topic != "" && c.Mode != modeKafka {
		if err := c.Kafka.ValidateConnection(); err != nil {
			errs = append(errs, fmt.Errorf("anchors.topic: produced through the kafka section's connection settings, which are incomplete: %w", err))
		}
	}
	return errors.Join(uniqueLines(errs)...)
}

// uniqueLines splits errs into their lines and drops repeats: two sections
// that share a setting (kafka and dead_letters share the brokers) report
// its problem once.
func uniqueLines(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, err := range errs {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !seen[line] {
				seen[line] = true
				out = append(out, errors.New(line))
			}
		}
	}
	return out
}

// policyVersion hashes the configuration that decides what is excluded and
// published (time semantics, consent policy, decoder bounds, datasets), so
// every exclusion entry and manifest names the policy it was decided under.
// Paths, secrets and operational knobs are not part of the policy (policy).
func (c *Config) policyVersion() string {
	return c.policy().Version()
}

// operationalKnobs are the settings of the policy's sections that change
// how a run goes, never what it excludes or publishes, so that changing one
// neither changes the policy version (nor so any data file's bytes) nor
// stops a state directory from resuming:
//   - pipeline.checkpoint_interval: when state is saved; a run stopped at
//     any point and resumed gives the same outputs.
//   - pipeline.segment_entries: how many exclusion entries a segment holds
//     before it is committed; the entries are the same.
//   - pipeline.idle_timeout: file mode never uses it; in Kafka mode it lets
//     a quiet partition's watermark follow processing time, which depends on
//     when the broker has nothing to send, not on the configuration, and can
//     only make events late (excluded), never publish one twice.
//   - decode.intern_entries: the size of a cache of dimension values.
//   - consent.settings: where the settings are read from (the input).
//   - datasets[…].description and the other descriptions: the data
//     dictionary's text.
//
// Every other key of these sections is policy, including keys added later
// (fail closed); the sections left out — out, state_dir, input paths and
// batch sizes, kafka, dead_letters, parquet, secrets, addresses, timeouts,
// memory_limit — hold no decision.
var operationalKnobs = []string{
	"pipeline.checkpoint_interval", "pipeline.segment_entries", "pipeline.idle_timeout",
	"decode.intern_entries", "consent.settings",
}

// policy is the configuration that decides what a run excludes and
// publishes, by YAML path: windows, lateness, out-of-orderness, future skew,
// consent defaults, decoder bounds, the longest input line kept, the
// datasets with their hierarchies (and the content of their tables) and
// privacy parameters.
func (c *Config) policy() claim.Policy {
	p := claim.Policy{}
	// The sections are plain configuration structs: YAML encodes them.
	_ = p.Add("pipeline", c.Pipeline)
	_ = p.Add("consent", c.Consent)
	_ = p.Add("decode", c.Decode)
	_ = p.Add("datasets", c.Datasets)
	p["input.max_line_bytes"] = fmt.Sprint(c.Input.MaxLineBytes) // longer lines are dead letters
	p.Drop(func(path string) bool {
		for _, k := range operationalKnobs {
			if claim.Under(path, k) {
				return true
			}
		}
		return strings.HasPrefix(path, "datasets[") && strings.HasSuffix(path, ".description")
	})
	// The strategy in force, not as written: a declaration that leaves it
	// out gets the default, and a resume under another default must be
	// refused like any other change of strategy.
	for i, d := range c.Datasets {
		p[fmt.Sprintf("datasets[%d].privacy.generalization", i)] = pipeline.Privacy{Generalization: d.Privacy.Generalization}.Strategy()
	}
	// A table hierarchy is its file's content, not its name.
	for i, d := range c.Datasets {
		for j, dim := range d.Dimensions {
			if dim.Hierarchy.Type != aggregate.TypeTable {
				continue
			}
			sum := "unreadable"
			if b, err := readTable(dim.Hierarchy.Table); err == nil {
				h := sha256.Sum256(b)
				sum = hex.EncodeToString(h[:])
			}
			p[fmt.Sprintf("datasets[%d].dimensions[%d].hierarchy.table_sha256", i, j)] = sum
		}
	}
	return p
}

// readTable reads a hierarchy table as aggregate.Build does: from the
// working directory, or else the tables built into deid.
func readTable(name string) ([]byte, error) {
	b, err := fs.ReadFile(os.DirFS("."), name)
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ReadFile(aggregate.BuiltinTables(), name)
	}
	return b, err
}

// pseudonymKey reads the key from the file or the environment; in file mode
// without either it returns a random key for this run.
func (c *Config) pseudonymKey() (key []byte, random bool, err error) {
	s := c.Secrets
	switch {
	case s.PseudonymKeyFile != "":
		b, err := os.ReadFile(s.PseudonymKeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("secrets.pseudonym_key_file: %w", err)
		}
		key = bytes.TrimSpace(b)
	case s.PseudonymKeyEnv != "" && os.Getenv(s.PseudonymKeyEnv) != "":
		key = []byte(strings.TrimSpace(os.Getenv(s.PseudonymKeyEnv)))
	default:
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, false, err
		}
		return key, true, nil
	}
	if len(key) < 16 {
		return nil, false, errors.New("secrets: the pseudonym key must be at least 16 bytes; generate one with `openssl rand -hex 32`")
	}
	return key, false, nil
}
