package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sources/file"
	"github.com/mya/deid/transforms/agegate"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/consent"
	"github.com/mya/deid/transforms/decode"
	"github.com/mya/deid/transforms/privacy"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var (
		configPath = fs.String("config", "", "YAML config file (default: the embedded defaults, file mode)")
		inputs     stringList
		settings   = fs.String("settings", "", "settings NDJSON file (file mode); overrides consent.settings")
		out        = fs.String("out", "", "output directory; overrides out")
		stateDir   = fs.String("state-dir", "", "checkpoint directory (a run resumes from it); overrides state_dir")
		brokers    = fs.String("brokers", "", "Kafka brokers, comma-separated; switches to Kafka mode (overrides kafka.brokers)")
		topics     = fs.String("topics", "", "event topics, comma-separated (overrides kafka.topics)")
		group      = fs.String("group", "", "consumer group (overrides kafka.group)")
		httpAddr   = fs.String("http-addr", "", "serve /metrics, /healthz and /readyz on this address, e.g. :9090")
		stopAtEnd  = fs.Bool("stop-at-end", false, "Kafka mode: stop at the topics' ends as seen at start")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
		memProfile = fs.String("memprofile", "", "write an allocation profile (pprof) of the run to this file when it ends")
		check      = fs.Bool("check", false, "validate the configuration and exit without reading anything")
		logLevel   = fs.String("log-level", "info", "log level: debug, info, warn, error")
	)
	fs.Var(&inputs, "input", "input file, directory or glob (repeatable); overrides input.paths")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (flags go before nothing else; see deid run --help)", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(inputs) > 0 {
		cfg.Input.Paths = inputs
	}
	if *settings != "" {
		cfg.Consent.SettingsPath = *settings
	}
	if *out != "" {
		cfg.Out = *out
	}
	if *stateDir != "" {
		cfg.StateDir = *stateDir
	}
	if *brokers != "" {
		cfg.Mode = modeKafka
		cfg.Kafka.Brokers = strings.Split(*brokers, ",")
	}
	if *topics != "" {
		cfg.Kafka.Topics = strings.Split(*topics, ",")
	}
	if *group != "" {
		cfg.Kafka.Group = *group
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	cfg.StopAtEnd = *stopAtEnd
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("invalid configuration:\n%w", indent(err))}
	}
	if *check {
		fmt.Fprintf(stdout, "configuration is valid (policy version %s)\n", cfg.policyVersion())
		return nil
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageErr("--cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return usageErr("--memprofile: %v", err)
		}
		defer func() {
			if err := errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close()); err != nil {
				fmt.Fprintf(stderr, "deid: --memprofile: %v\n", err)
			}
		}()
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	defer log.Sync()
	return runJob(ctx, &cfg, log, stdout)
}

// indent puts each line of err's message on its own indented line.
func indent(err error) error {
	return fmt.Errorf("  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = lvl
	zc.Sampling = nil
	zc.OutputPaths = []string{"stderr"}
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapISO8601
	if w != os.Stderr {
		// Tests pass their own writer; keep their logs out of the terminal.
		return zap.New(zapCore(zc, w)), nil
	}
	return zc.Build()
}

// runJob runs the main job in the configured mode: file mode to the end of
// its input, Kafka mode until SIGTERM/SIGINT (or the end of the topics with
// --stop-at-end).
func runJob(ctx context.Context, cfg *Config, log *zap.Logger, stdout io.Writer) error {
	resuming := hasCheckpoints(cfg.StateDir)
	if !resuming && cfg.Mode == modeFile {
		if err := checkOutDir(cfg.Out); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	key, random, err := cfg.pseudonymKey()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if random {
		if cfg.StateDir != "" || cfg.Mode != modeFile {
			return &exitError{code: 2, err: fmt.Errorf("secrets: checkpoints outlive the process, so this run needs a fixed pseudonym key: set %s or secrets.pseudonym_key_file", cfg.Secrets.PseudonymKeyEnv)}
		}
		log.Info("no pseudonym key configured: using a random key for this run (file mode)")
	}
	if resuming {
		log.Info("resuming from checkpoints", zap.String("state_dir", cfg.StateDir))
	}
	if cfg.MemoryLimit > 0 {
		pipeline.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.Info("soft memory limit set", zap.Stringer("memory_limit", cfg.MemoryLimit))
	}
	stats := &pipeline.Stats{}
	b := &builder{cfg: cfg, key: key, log: log, stats: stats}
	defer b.close()
	st, err := b.stages(ctx)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	pcfg := cfg.Pipeline
	pcfg.PolicyVersion = cfg.policyVersion()
	pcfg.PipelineVersion = version

	if cfg.HTTPAddr != "" {
		srv, err := serveOps(cfg.HTTPAddr, stats, b.ready, b.dropped, log)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer srv.Close()
	}
	progCtx, stopProgress := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go func() { defer close(progDone); showProgress(progCtx, os.Stderr, stats, st.Source) }()
	defer func() { stopProgress(); <-progDone }()

	// A stop signal must end the run within shutdown_timeout.
	go func() {
		<-ctx.Done()
		select {
		case <-time.After(cfg.ShutdownTimeout):
			log.Error("shutdown_timeout passed before the run stopped; exiting", zap.Duration("shutdown_timeout", cfg.ShutdownTimeout))
			os.Exit(1)
		case <-progDone:
		}
	}()
	start := time.Now()
	summary, err := pipeline.Run(ctx, pcfg, *st, pipeline.WithLogger(log), pipeline.WithStats(stats))
	// A stop signal is a graceful stop in file mode too (SPEC §9): the
	// workers stopped reading and checkpointed, and the run exits 0. Only
	// the stop itself counts: any other failure is still an error.
	stopped := err != nil && summary != nil && ctx.Err() != nil && err == ctx.Err()
	if err != nil && !stopped {
		return err
	}
	elapsed := time.Since(start)
	var read int64
	for _, p := range summary.Partitions {
		read += p.Read
	}
	fmt.Fprintf(stdout, "deid %s: %s mode, %d partitions, %d records in %s (%.0f records/s), policy %s\n\n",
		version, cfg.Mode, len(summary.Partitions), read, elapsed.Round(time.Millisecond), float64(read)/elapsed.Seconds(), pcfg.PolicyVersion)
	printSummary(stdout, summary, cfg.Out)
	if stopped {
		if cfg.StateDir != "" {
			log.Info("stopped by a signal before the end of the input; run the same command again to resume from the checkpoints", zap.String("state_dir", cfg.StateDir))
		} else {
			log.Warn("stopped by a signal before the end of the input; without state_dir nothing was checkpointed, so the output holds only the windows published so far: remove it and run again, or set state_dir to make a stop resumable", zap.String("out", cfg.Out))
		}
	}
	return nil
}

// checkOutDir refuses an output directory that already holds a run:
// published windows are immutable, so a file-mode run starts from an empty
// directory.
func checkOutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("out: %w", err)
	}
	if len(entries) > 0 {
		abs, _ := filepath.Abs(dir)
		return fmt.Errorf("out: %s is not empty; published windows are never overwritten — remove it or pass another --out", abs)
	}
	return nil
}

// hasCheckpoints tells whether dir is the state directory of an earlier
// run. A run creates it before it writes any output, so a run killed before
// its first checkpoint resumes too (from the start of its input).
func hasCheckpoints(dir string) bool {
	if dir == "" {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, "partitions"))
	return err == nil && fi.IsDir()
}

// builder builds every stage of a run from the config, and keeps what must
// be closed at the end.
type builder struct {
	cfg     *Config
	key     []byte
	log     *zap.Logger
	stats   *pipeline.Stats
	closers []func() error
	// ready tells /readyz whether consent has caught up and partitions
	// are assigned.
	ready func() bool
	// dropped counts the non-allowlisted fields the decoders skipped.
	dropped func() map[decode.DroppedField]int64
}

func (b *builder) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func (b *builder) stages(ctx context.Context) (*pipeline.Stages, error) {
	cfg, log := b.cfg, b.log
	// The state directory first: it marks the output as this run's, so a
	// run killed before its first checkpoint can resume (hasCheckpoints).
	var ckpt *pipeline.Checkpoints
	if cfg.StateDir != "" {
		var err error
		if ckpt, err = pipeline.NewCheckpoints(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	cons, err := consent.New(cfg.Consent, b.key)
	if err != nil {
		return nil, err
	}
	specs, err := aggregate.Build(aggregate.Config{Datasets: cfg.Datasets}, os.DirFS("."))
	if err != nil {
		return nil, err
	}
	aggs := make([]pipeline.Aggregator, len(specs))
	for i, spec := range specs {
		if aggs[i], err = aggregate.New(spec); err != nil {
			return nil, err
		}
	}
	// With a signing key, every manifest and exclusion segment is signed.
	signer, err := loadSigner(cfg.Secrets.SigningKeyFile, cfg.Secrets.SigningKeyEnv)
	if err != nil {
		return nil, err
	}
	if signer != nil {
		log.Info("signing manifests and exclusion segments", zap.String("key_id", signer.KeyID()))
	}
	pq := cfg.Parquet
	pq.Dir = cfg.Out
	datasets, err := parquet.New(pq, parquet.WithSigner(signer))
	if err != nil {
		return nil, err
	}
	ex := cfg.Exclusions
	ex.Dir = cfg.Out
	excl, err := exclusions.New(ex, exclusions.WithDatasets(specs...), exclusions.WithSigner(signer))
	if err != nil {
		return nil, err
	}
	decoders, err := decode.NewDecoders(cfg.Decode)
	if err != nil {
		return nil, err
	}
	b.dropped = decoders.DroppedFields
	st := &pipeline.Stages{
		NewDecoder:   decoders.NewDecoder,
		Consent:      cons,
		Gates:        []pipeline.Gate{agegate.Gate{}},
		Aggregators:  aggs,
		Privacy:      privacy.New(),
		Datasets:     datasets,
		Exclusions:   excl,
		PseudonymKey: b.key,
		Checkpoints:  ckpt,
	}
	if cfg.Mode == modeKafka {
		return st, b.kafkaStages(ctx, st, cons)
	}
	src, err := file.New(cfg.Input)
	if err != nil {
		return nil, err
	}
	st.Source = src
	if err := cons.LoadFile(cfg.Consent.SettingsPath); err != nil {
		return nil, err
	}
	logConsent(log, cons)
	dl := deadletter.DefaultConfig()
	dl.Dir = cfg.Out
	if st.DeadLetters, err = deadletter.New(dl); err != nil {
		return nil, err
	}
	b.ready = func() bool { return true }
	return st, nil
}

func logConsent(log *zap.Logger, cons *consent.Store) {
	cs := cons.Stats()
	log.Info("consent loaded", zap.Int("workspaces", cons.Workspaces()), zap.Int64("records", cs.Applied),
		zap.Int64("malformed", cs.Malformed), zap.Int64("ignored_opt_ins", cs.IgnoredOptIns))
	for _, sk := range cons.Skipped() {
		log.Warn("settings record skipped", zap.String("position", sk.Position), zap.String("reason", sk.Reason))
	}
}
