// Command deid-bench is the end-to-end benchmark behind `make bench`
// (scripts/bench.sh builds it and runs it): deid in file mode, the same job
// as DuckDB SQL, the decode limit, and deid in Kafka mode against a bare
// kafka-go consumer on a local broker, on one cached seeded input, several
// runs each, alternating. It prints a table of medians with min–max and
// writes the figures as JSON under bench/results/ so runs can be compared.
//
//	deid-bench [flags]                 run the benchmark
//	deid-bench decode-limit FILE...    read and decode FILEs, nothing else
//	deid-bench bare-consumer --brokers B --topic T --group G
//	                                   read T to its end offsets, counting
//	                                   records, nothing else
//	deid-bench load-kafka --brokers B --prefix P --settings FILE EVENTS...
//	                                   create topics P.* and produce the
//	                                   input into them
//	deid-bench write-input DIR CONFIG  generate the input into DIR
//
// The benchmark runs the last four as children. It is a separate binary, not
// a deid subcommand, so deid ships nothing of the benchmark, and so that the
// decode limit and the bare consumer run as their own processes, measured
// (CPU time, peak RSS) exactly as deid and DuckDB are.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mya/deid/internal/bench"
	"github.com/mya/deid/internal/gen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The subcommands the benchmark runs as children; without one, the
	// benchmark itself.
	subcommands := map[string]func(context.Context, []string) error{
		"decode-limit":            decodeLimit,
		bench.BareConsumerCommand: bareConsumer,
		bench.LoadCommand:         loadKafka,
		bench.WriteInputCommand:   writeInput,
	}
	if exe, err := os.Executable(); err == nil {
		bench.WriteInput = bench.WriteInputChild(exe)
	}
	cmd, args := run, os.Args[1:]
	if len(args) > 0 {
		if sub, ok := subcommands[args[0]]; ok {
			cmd, args = sub, args[1:]
		}
	}
	if err := cmd(ctx, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "deid-bench:", err)
		os.Exit(1)
	}
}

// writeInput generates an input (bench.WriteInputChild runs it).
func writeInput(_ context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%s: want DIR CONFIG-JSON", bench.WriteInputCommand)
	}
	var cfg gen.Config
	if err := json.Unmarshal([]byte(args[1]), &cfg); err != nil {
		return fmt.Errorf("%s: the configuration: %w", bench.WriteInputCommand, err)
	}
	st, err := gen.WriteFiles(args[0], cfg)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}

func decodeLimit(ctx context.Context, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("decode-limit: name the input files")
	}
	c, err := bench.DecodeLimit(ctx, files)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(c)
}

func bareConsumer(ctx context.Context, args []string) error {
	c, err := bench.ParseConsumerArgs(args)
	if err != nil {
		return err
	}
	n, err := bench.BareConsumer(ctx, c)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(n)
}

func loadKafka(ctx context.Context, args []string) error {
	c, err := bench.ParseLoadArgs(args)
	if err != nil {
		return err
	}
	return bench.LoadKafka(ctx, c)
}

func run(ctx context.Context, args []string) error {
	g := gen.DefaultConfig()
	g.Events, g.Partitions = 2_000_000, 2
	cfg := bench.Config{Reps: 3, Threads: 2, CacheDir: ".cache/bench", ResultsDir: "bench/results",
		Deid: "bin/deid", Python: ".cache/venv/bin/python", Script: "scripts/bench_duckdb.py",
		Region: "transforms/aggregate/region.csv", Lenient: true}
	fs := flag.NewFlagSet("deid-bench", flag.ContinueOnError)
	fs.IntVar(&g.Events, "events", g.Events, "events in the generated input")
	fs.IntVar(&g.Partitions, "partitions", g.Partitions, "partitions (files) of the input; deid runs one worker each")
	fs.Int64Var(&g.Seed, "seed", g.Seed, "generator seed")
	fs.IntVar(&g.Workspaces, "workspaces", g.Workspaces, "workspaces in the generated input")
	fs.IntVar(&g.Days, "days", g.Days, "days of event time in the generated input")
	fs.IntVar(&cfg.Reps, "reps", cfg.Reps, "runs of each contender")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "DuckDB threads")
	fs.StringVar(&cfg.CacheDir, "cache", cfg.CacheDir, "directory of generated inputs")
	fs.StringVar(&cfg.ResultsDir, "results", cfg.ResultsDir, "directory of result JSON files")
	fs.StringVar(&cfg.WorkDir, "work", "", "directory for the runs' outputs (default: the system's temporary directory)")
	fs.StringVar(&cfg.Deid, "deid", cfg.Deid, "deid binary")
	fs.StringVar(&cfg.AltDeid, "deid-alt", "", "another deid binary (a patched build) to run alternating with --deid, in file mode and, when measured, in Kafka mode")
	fs.StringVar(&cfg.Python, "python", cfg.Python, "Python with duckdb (scripts/pyenv.sh makes .cache/venv)")
	fs.StringVar(&cfg.Script, "script", cfg.Script, "the DuckDB side of the benchmark")
	fs.StringVar(&cfg.Region, "region", cfg.Region, "deid's country → continent table")
	fs.BoolVar(&cfg.SkipDuckDB, "skip-duckdb", false, "leave DuckDB out")
	brokers := fs.String("brokers", os.Getenv("DEID_KAFKA_BROKERS"),
		"Kafka broker on 127.0.0.1 for Kafka mode, comma-separated (default $DEID_KAFKA_BROKERS; scripts/bench.sh starts one)")
	fs.BoolVar(&cfg.SkipKafka, "skip-kafka", false, "leave Kafka mode out")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", os.Getenv("DEID_S3_ENDPOINT"),
		"S3-compatible server on 127.0.0.1 for deid writing to s3:// beside a directory (scripts/bench.sh starts one; credentials from the AWS environment); empty leaves it out")
	skipS3 := fs.Bool("skip-s3", false, "leave deid writing to s3:// out")
	fs.BoolVar(&cfg.Lenient, "lenient", cfg.Lenient, "also time DuckDB reading fields typed (its fastest idiom)")
	fs.IntVar(&cfg.Instances, "instances", 3, "with Kafka and the S3 server, also run one job (kafka.scale_out) by one instance and by this many, and measure a takeover; 0 leaves it out")
	fs.IntVar(&cfg.JobProcs, "job-gomaxprocs", 0, "run each instance of the job of several with this GOMAXPROCS, as instances with cores of their own would (0: the default)")
	fs.IntVar(&cfg.Scale, "memory-scale", 0, "also run deid on this many times the events, generated (same workspaces and days) and repeated (same cells and entities), to show what peak RSS grows with, e.g. 10")
	fs.StringVar(&cfg.Note, "note", "", "free text recorded with the results")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *skipS3 {
		cfg.S3Endpoint = ""
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Self, cfg.Gen = self, g
	if cfg.AltDeid != "" {
		if cfg.AltDeid, err = filepath.Abs(cfg.AltDeid); err != nil {
			return err
		}
	}
	for _, p := range []*string{&cfg.Deid, &cfg.Python, &cfg.Script, &cfg.Region} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if _, err := os.Stat(cfg.Deid); err != nil {
		return fmt.Errorf("deid binary: %w (run make build)", err)
	}
	if !cfg.SkipKafka {
		if *brokers == "" {
			return errors.New("no Kafka broker for Kafka mode: pass --brokers (scripts/bench.sh starts one), or --skip-kafka")
		}
		cfg.Brokers = strings.Split(*brokers, ",")
	}
	if !cfg.SkipDuckDB {
		if _, err := os.Stat(cfg.Python); err != nil {
			return fmt.Errorf("python: %w (run scripts/pyenv.sh, or pass --skip-duckdb)", err)
		}
	}
	_, err = bench.Run(ctx, cfg, os.Stdout)
	return err
}
