package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sources/file"
	kafkasrc "github.com/mya/deid/sources/kafka"
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
		anchorFile = fs.String("anchors", "", "anchor log file outside the output: one line appended per commit (overrides anchors.file)")
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
	if *anchorFile != "" {
		cfg.Anchors.File = *anchorFile
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
	// The output's store: on object storage, first checked to honour
	// conditional writes, which its lock and every commit rely on.
	outStore, err := openStore(ctx, cfg.Storage, "out", cfg.Out)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// The state directory's store (a directory or s3://), probed likewise.
	var stateObjs objstore.Store
	if cfg.StateDir != "" {
		if stateObjs, err = openStateObjects(ctx, cfg, log); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	// Nothing is read or written before the state directory and the output
	// are locked, and bound to this key and policy (contract §9).
	job := cfg.Mode == modeKafka && cfg.Kafka.ScaleOut
	var cl *claimed
	if job {
		// Several instances share the state and the output: bound, not locked.
		cl, err = claimJob(ctx, cfg, key, outStore, stateObjs)
	} else {
		cl, err = claimDirs(ctx, cfg, key, outStore, stateObjs)
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer cl.release()
	// A run whose lease on the output another process took over stops
	// writing there, and fails.
	ctx, cancelLost := context.WithCancelCause(ctx)
	defer cancelLost(nil)
	go func() {
		select {
		case <-cl.lost():
			cancelLost(cl.lostErr())
		case <-ctx.Done():
		}
	}()
	resuming := cl.resuming
	// Events of a window an earlier run published are late.
	frontier, err := publishedFrontier(ctx, outStore)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if resuming {
		log.Info("resuming from checkpoints", zap.String("state_dir", cfg.StateDir))
	}
	if cfg.MemoryLimit > 0 {
		pipeline.SetMemoryLimit(int64(cfg.MemoryLimit))
		log.Info("soft memory limit set", zap.Stringer("memory_limit", cfg.MemoryLimit))
	}
	stats := &pipeline.Stats{}
	b := &builder{cfg: cfg, key: key, log: log, stats: stats, out: outStore, state: stateObjs}
	if cl.lease != nil {
		b.fence = cl.lease.Check
	}
	if cl.stateLease != nil {
		b.stateFence = cl.stateLease.Check
	}
	if job {
		b.pubLease = &publisherLease{state: stateObjs, opts: leaseOptions(cfg), log: log}
		b.fence = b.pubLease.fence
	}
	defer b.close()
	st, err := b.stages(ctx)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	st.PublishedEnd = frontier
	pcfg := cfg.Pipeline
	pcfg.PolicyVersion = cfg.policyVersion()
	pcfg.PipelineVersion = version

	if cfg.HTTPAddr != "" {
		srv, err := serveOps(cfg.HTTPAddr, stats, b.ready, b.counts, log)
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
	runOpts := []pipeline.Option{pipeline.WithLogger(log), pipeline.WithStats(stats), pipeline.WithClock(processingClock)}
	if job {
		return runJobInstance(ctx, cfg, log, stdout, b, st, pcfg, runOpts, start)
	}
	summary, err := pipeline.Run(ctx, pcfg, *st, runOpts...)
	// A stop signal is a graceful stop in file mode too (contract §9): the
	// workers stopped reading and checkpointed, and the run exits 0. Only
	// the stop itself counts: any other failure is still an error.
	stopped := err != nil && summary != nil && ctx.Err() != nil && err == ctx.Err()
	if cause := context.Cause(ctx); (cl.lease != nil || cl.stateLease != nil) && errors.Is(cause, claim.ErrLeaseLost) {
		return cause
	}
	if err != nil && !stopped {
		return err
	}
	// A stop after consent failed (the settings follower met a record it
	// could not attribute) is no graceful end: the run could publish
	// nothing more.
	if b.consentErr != nil {
		if cerr := b.consentErr(); cerr != nil {
			return fmt.Errorf("consent: %w", cerr)
		}
	}
	for _, w := range summary.CommittedElsewhere {
		log.Info("window already committed by another writer: it stays as that writer committed it",
			zap.String("dataset", w.Dataset), zap.Time("window_start", time.UnixMicro(w.Window.Start).UTC()), zap.Time("window_end", time.UnixMicro(w.Window.End).UTC()))
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
	// consentErr says why the settings follower or the consent store
	// failed (Kafka mode), or nil.
	consentErr func() error
	// counts are the stages' own counts that /metrics exports.
	counts stageCounts
	// out is the output's store (a directory or s3://bucket/prefix).
	out objstore.Store
	// fence, for an s3:// output, checks its lease before each window's
	// manifest.
	fence func(ctx context.Context) error
	// state is the state directory's store, nil without one.
	state objstore.Store
	// stateFence, for an s3:// state_dir, checks its lease before each
	// checkpoint.
	stateFence func(ctx context.Context) error
	// In a job of several instances: the publisher lease, the stage-1
	// source and stage 2's stages.
	pubLease *publisherLease
	src      *kafkasrc.Source
	job      *pipeline.PublishStages
}

func (b *builder) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func (b *builder) stages(ctx context.Context) (*pipeline.Stages, error) {
	cfg, log := b.cfg, b.log
	// The checkpoint store first. The state directory's binding, written by
	// claimDirs before anything else, marks the output as this run's, so a
	// run killed before its first checkpoint resumes.
	var ckpt *pipeline.Checkpoints
	if cfg.StateDir != "" {
		var err error
		if ckpt, err = pipeline.NewCheckpoints(ctx, stateStore{b.state}); err != nil {
			return nil, err
		}
		if b.stateFence != nil {
			ckpt.WithFence(b.stateFence)
		}
	}
	// The one pseudonym key: consent is built with it and the workers take
	// it from consent, so a withdrawal matches the workers' pseudonyms.
	pk, err := pipeline.NewPseudonymKey(b.key)
	if err != nil {
		return nil, err
	}
	cons, err := consent.New(cfg.Consent, pk)
	if err != nil {
		return nil, err
	}
	specs, err := aggregate.Build(aggregate.Config{Datasets: cfg.Datasets}, os.DirFS("."))
	if err != nil {
		return nil, err
	}
	aggs := make([]pipeline.Aggregator, len(specs))
	built := make([]*aggregate.Aggregator, len(specs))
	for i, spec := range specs {
		if built[i], err = aggregate.New(spec); err != nil {
			return nil, err
		}
		aggs[i] = built[i]
	}
	b.counts.others = func() []aggregate.OtherCount {
		var out []aggregate.OtherCount
		for _, a := range built {
			out = append(out, a.OtherCounts()...)
		}
		return out
	}
	// With a signing key, every manifest and exclusion segment is signed.
	signer, err := loadSigner(cfg.Secrets.SigningKeyFile, cfg.Secrets.SigningKeyEnv)
	if err != nil {
		return nil, err
	}
	if signer != nil {
		log.Info("signing manifests and exclusion segments", zap.String("key_id", signer.KeyID()))
	}
	anch, err := b.anchors()
	if err != nil {
		return nil, err
	}
	pq := cfg.Parquet
	pq.Dir = cfg.Out
	pqOpts := []parquet.Option{parquet.WithStore(b.out), parquet.WithSigner(signer), parquet.WithAnchors(anch)}
	if b.fence != nil {
		pqOpts = append(pqOpts, parquet.WithFence(b.fence))
	}
	datasets, err := parquet.New(pq, pqOpts...)
	if err != nil {
		return nil, err
	}
	if b.pubLease != nil {
		b.pubLease.acquired = datasets.ForgetHeads
	}
	// A crash may have come between a window's commit and its anchor.
	if err := datasets.AnchorHeads(ctx); err != nil {
		return nil, err
	}
	ex := cfg.Exclusions
	ex.Dir = cfg.Out
	excl, err := exclusions.New(ex, exclusions.WithStore(b.out), exclusions.WithDatasets(specs...), exclusions.WithSigner(signer), exclusions.WithAnchors(anch), exclusions.WithClock(processingClock))
	if err != nil {
		return nil, err
	}
	decoders, err := decode.NewDecoders(cfg.Decode)
	if err != nil {
		return nil, err
	}
	b.counts.dropped = decoders.DroppedFields
	st := &pipeline.Stages{
		NewDecoder:  decoders.NewDecoder,
		Consent:     cons,
		Gates:       []pipeline.Gate{agegate.Gate{}},
		Aggregators: aggs,
		Privacy:     privacy.New(),
		Datasets:    datasets,
		Exclusions:  excl,
		Checkpoints: ckpt,
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
	if err := logUnattributable(ctx, excl, cfg.Out, cons, cfg.policyVersion()); err != nil {
		return nil, err
	}
	dl := deadletter.DefaultConfig()
	dl.Dir = cfg.Out
	dl.KeepPayload = cfg.DeadLetters.KeepPayload
	dlOpts := []deadletter.Option{deadletter.WithExcluded(consentExcluded(cons))}
	if isURL(cfg.Out) {
		// A directory's dead-letter files are appended to; an object is
		// stored whole at each flush, with the same bytes.
		dlOpts = append(dlOpts, deadletter.WithStore(b.out))
	}
	if st.DeadLetters, err = deadletter.New(dl, dlOpts...); err != nil {
		return nil, err
	}
	logKeepPayload(log, cfg.DeadLetters.KeepPayload)
	b.ready = func() bool { return true }
	return st, nil
}

// consentExcluded tells the dead-letter sinks whether a workspace's records
// are excluded at this moment, by the ingest gate's own rule, so that
// dead_letters.keep_payload never keeps them.
func consentExcluded(cons *consent.Store) func(workspaceID []byte) bool {
	return func(ws []byte) bool {
		return cons.Check(&pipeline.Event{WorkspaceID: ws}) != pipeline.ReasonNone
	}
}

// logKeepPayload says once, at start, that dead letters hold raw input.
func logKeepPayload(log *zap.Logger, keep bool) {
	if keep {
		log.Warn("dead letters keep malformed records' bytes (dead_letters.keep_payload), except message types and excluded workspaces': they hold raw input as long as they are kept")
	}
}

func logConsent(log *zap.Logger, cons *consent.Store) {
	cs := cons.Stats()
	log.Info("consent loaded", zap.Int("workspaces", cons.Workspaces()), zap.Int64("records", cs.Applied),
		zap.Int64("malformed", cs.Malformed), zap.Int64("ignored_opt_ins", cs.IgnoredOptIns))
	for _, sk := range cons.Skipped() {
		if len(sk.Workspaces) == 0 {
			log.Warn("settings record unreadable and naming no workspace: skipped (consent.unattributable: skip)", zap.String("position", sk.Position), zap.String("reason", sk.Reason))
			continue
		}
		log.Warn("settings record unreadable: its workspaces are excluded (consent_unreadable) until a readable record changes them",
			zap.String("position", sk.Position), zap.String("reason", sk.Reason), zap.Strings("workspaces", sk.Workspaces))
	}
}
