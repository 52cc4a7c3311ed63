package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/verify"
)

// Config says what to measure and where things are.
type Config struct {
	// Gen describes the input: events, partitions, seed, workspaces, days.
	Gen gen.Config
	// Reps is how many times each contender runs.
	Reps int
	// Threads is DuckDB's thread count; deid uses one worker per partition.
	Threads int
	// CacheDir holds generated inputs (.cache/bench).
	CacheDir string
	// ResultsDir receives one JSON file per run (bench/results).
	ResultsDir string
	// WorkDir is where outputs are written during the run (a temporary
	// directory, removed at the end).
	WorkDir string
	// Deid is the deid binary; Self the deid-bench binary (it runs the
	// decode limit as a child).
	Deid, Self string
	// AltDeid, when set, is another deid binary (a patched build) run as
	// one more contender, alternating with Deid, so that a change is
	// measured against its base in the same conditions: in file mode, and
	// in Kafka mode beside deid's Kafka-mode runs when Kafka is measured.
	AltDeid string
	// Python is the interpreter with duckdb; Script is
	// scripts/bench_duckdb.py; Region is deid's region.csv.
	Python, Script, Region string
	// SkipDuckDB leaves DuckDB out (no Python environment).
	SkipDuckDB bool
	// Brokers is the Kafka broker (on 127.0.0.1) for deid in Kafka mode
	// and the bare consumer; SkipKafka leaves Kafka mode out.
	Brokers   []string
	SkipKafka bool
	// Lenient also times DuckDB reading the fields typed, its fastest
	// idiom, whose casts accept some records deid finds malformed.
	Lenient bool
	// S3Endpoint is the local S3-compatible server (scripts/s3-local.sh)
	// for deid writing to s3:// beside a directory; empty leaves it out.
	S3Endpoint string
	// Instances, when above 1 (and with Kafka and the S3 server), also
	// runs one job (kafka.scale_out, state and output on s3://) by one
	// instance and by this many, and once more with one of them killed
	// a third of the way in, to measure the takeover.
	Instances int
	// JobProcs, when above 0, runs each instance of the job of several with
	// GOMAXPROCS=JobProcs, as instances with cores of their own would
	// (the job of one keeps the default).
	JobProcs int
	// Scale, when above 1, also runs deid once on Scale times the events
	// over the same workspaces and days, to show how peak RSS grows.
	Scale int
	// Note is free text recorded with the results (what changed).
	Note string
}

// Contender names, in the results.
const (
	Deid          = "deid"
	DeidAlt       = "deid_alt"
	DuckDB        = "duckdb"
	DuckDBLenient = "duckdb_lenient"
	DecodeLimitC  = "decode_limit"
)

// Result is one benchmark run, as written to ResultsDir.
type Result struct {
	Version    int                `json:"version"`
	Started    time.Time          `json:"started"`
	Note       string             `json:"note,omitempty"`
	Host       Host               `json:"host"`
	Input      *Input             `json:"input"`
	Reps       int                `json:"reps"`
	Threads    int                `json:"threads"`
	Contenders map[string]Figures `json:"contenders"`
	// Ratios compare deid with another contender run by run (each pair
	// ran back to back), as deid's throughput over the other's: above 1,
	// deid is faster.
	Ratios      map[string]Ratio `json:"ratios"`
	Targets     []Target         `json:"targets"`
	Equivalence json.RawMessage  `json:"equivalence,omitempty"`
	// Kafka is deid in Kafka mode against a bare kafka-go consumer.
	Kafka KafkaRun `json:"kafka"`
	// Job is one job run by one and by several instances.
	Job    JobRun  `json:"job"`
	Memory *Memory `json:"memory,omitempty"`
	// Utility is each dataset's information-loss score and events by
	// level per dimension in deid's last run's output (one line each).
	Utility []string `json:"utility,omitempty"`
}

// Host describes the machine and how busy it was.
type Host struct {
	CPUs      int     `json:"cpus"`
	GoVersion string  `json:"go"`
	Commit    string  `json:"commit"`
	LoadStart float64 `json:"loadavg_start"`
	LoadEnd   float64 `json:"loadavg_end"`
}

// Ratio is deid's throughput over a contender's, per pair of runs.
type Ratio struct {
	Wall Spread `json:"wall"`
	CPU  Spread `json:"cpu"`
}

// Target is one of issue 5's targets, evaluated on this run's medians. It
// is information, never a failure: the machine is noisy.
type Target struct {
	Name   string  `json:"name"`
	Want   float64 `json:"want"`
	Got    float64 `json:"got"`
	Met    bool    `json:"met"`
	Reason string  `json:"reason,omitempty"`
}

// Memory compares deid's peak RSS on the input and on two inputs of Scale
// times its events: one generated over the same workspaces and days (more
// events bring more cells, contributions and entities too), and one that
// repeats each event in place under new ids (Repeat: the same cells,
// contributions and entities, only the events and their dedup keys
// multiplied).
type Memory struct {
	Scale      int     `json:"scale"`
	BaseEvents int64   `json:"base_events"`
	BigEvents  int64   `json:"big_events"`
	BaseRSSMB  float64 `json:"base_peak_rss_mib"`
	BigRSSMB   float64 `json:"big_peak_rss_mib"`
	BigWall    float64 `json:"big_wall_seconds"`
	BigCPU     float64 `json:"big_cpu_seconds"`
	// Repeated is the run on the repeated input.
	Repeated *ScaledRun `json:"repeated,omitempty"`
}

// ScaledRun is one run of deid on a scaled input.
type ScaledRun struct {
	Events int64   `json:"events"`
	RSSMB  float64 `json:"peak_rss_mib"`
	Wall   float64 `json:"wall_seconds"`
	CPU    float64 `json:"cpu_seconds"`
}

// Run prepares the input, measures every contender cfg.Reps times
// (alternating), checks DuckDB's cells against deid's, writes the result
// JSON and prints a table to w.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Result, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	if cfg.Reps < 1 {
		return nil, errors.New("bench: reps must be at least 1")
	}
	in, err := Prepare(cfg.CacheDir, cfg.Gen, logf)
	if err != nil {
		return nil, fmt.Errorf("bench: input: %w", err)
	}
	res := &Result{Version: 1, Started: time.Now().UTC(), Note: cfg.Note, Input: in, Reps: cfg.Reps,
		Threads: cfg.Threads, Contenders: map[string]Figures{}, Ratios: map[string]Ratio{},
		Kafka: KafkaRun{Note: "kafka: left out (--skip-kafka)"},
		Job:   JobRun{Note: "left out (needs Kafka, the S3 server and --instances above 1)"}}
	res.Host = Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: commit(), LoadStart: LoadAvg()}
	work, err := os.MkdirTemp(cfg.WorkDir, "deid-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	type contender struct {
		name string
		run  func(rep int) (Sample, error)
	}
	deidOut := func(rep int) string { return filepath.Join(work, fmt.Sprintf("deid-%d", rep)) }
	duckOut := func(rep int) string { return filepath.Join(work, fmt.Sprintf("duckdb-%d", rep)) }
	contenders := []contender{{Deid, func(rep int) (Sample, error) {
		out := deidOut(rep)
		defer removeBut(out, rep == cfg.Reps-1)
		return Measure(ctx, "", nil, cfg.Deid, "run", "--input", in.Dir, "--settings", in.Settings,
			"--out", out, "--log-level", "error")
	}}}
	if cfg.AltDeid != "" {
		contenders = append(contenders, contender{DeidAlt, func(rep int) (Sample, error) {
			out := deidOut(rep) + "-alt"
			defer os.RemoveAll(out)
			return Measure(ctx, "", nil, cfg.AltDeid, "run", "--input", in.Dir, "--settings", in.Settings,
				"--out", out, "--log-level", "error")
		}})
	}
	if !cfg.SkipDuckDB {
		duck := func(lenient bool) func(rep int) (Sample, error) {
			return func(rep int) (Sample, error) {
				out := duckOut(rep)
				if lenient {
					out += "-lenient"
				}
				defer removeBut(out, rep == cfg.Reps-1 && !lenient)
				args := []string{cfg.Script, "run", "--settings", in.Settings, "--region", cfg.Region,
					"--out", out, "--threads", fmt.Sprint(cfg.Threads)}
				if lenient {
					args = append(args, "--lenient")
				}
				return Measure(ctx, "", nil, cfg.Python, append(args, in.Events...)...)
			}
		}
		contenders = append(contenders, contender{DuckDB, duck(false)})
		if cfg.Lenient {
			contenders = append(contenders, contender{DuckDBLenient, duck(true)})
		}
	}
	var so *s3Out
	var job *jobEnv
	if cfg.S3Endpoint != "" {
		so, err = prepareS3(ctx, cfg.S3Endpoint, work)
		if err != nil {
			return nil, fmt.Errorf("bench: s3: %w", err)
		}
		contenders = append(contenders, contender{DeidS3, func(rep int) (Sample, error) {
			defer so.remove(ctx, rep)
			return Measure(ctx, "", nil, cfg.Deid, "run", "--config", so.config, "--input", in.Dir, "--settings", in.Settings,
				"--out", so.out(rep), "--log-level", "error")
		}})
	}
	contenders = append(contenders, contender{DecodeLimitC, func(rep int) (Sample, error) {
		return Measure(ctx, "", []string{"GOMAXPROCS=" + fmt.Sprint(runtime.NumCPU())}, cfg.Self,
			append([]string{"decode-limit"}, in.Events...)...)
	}})
	if !cfg.SkipKafka {
		k, err := loadKafka(ctx, cfg, in, res, work, logf)
		if k != nil {
			defer k.drop()
		}
		if err != nil {
			return nil, fmt.Errorf("bench: kafka: %w", err)
		}
		// Side by side, so that their runs, paired for the ratio, are
		// next to each other in time.
		contenders = append(contenders, contender{DeidKafka, func(rep int) (Sample, error) {
			return measureDeidKafka(ctx, cfg.Deid, "deid", k, in, work, rep)
		}})
		if cfg.AltDeid != "" {
			contenders = append(contenders, contender{DeidKafkaAlt, func(rep int) (Sample, error) {
				return measureDeidKafka(ctx, cfg.AltDeid, "deid-alt", k, in, work, rep)
			}})
		}
		contenders = append(contenders, contender{KafkaConsumer, func(rep int) (Sample, error) {
			return measureConsumer(ctx, cfg, k, in, rep)
		}})
		if so != nil && cfg.Instances > 1 {
			if job, err = newJobEnv(k, so); err != nil {
				return nil, fmt.Errorf("bench: job: %w", err)
			}
			res.Job = JobRun{Measured: true, Instances: cfg.Instances, Partitions: len(in.Events),
				SessionTimeout: jobSessionTimeout.Seconds(), LeaseTTL: jobLeaseTTL.Seconds(),
				Note: fmt.Sprintf("one job (kafka.scale_out, state and output on s3:// of the local S3 server, a fresh group, "+
					"partials topic and prefix each run) by 1 instance and by %d started %s apart, each run to the end "+
					"(--stop-at-end); CPU is the instances' sum, wall from the first start to the last exit", cfg.Instances, jobStagger)}
			if cfg.JobProcs > 0 {
				res.Job.Note += fmt.Sprintf("; each of the %d instances with GOMAXPROCS=%d", cfg.Instances, cfg.JobProcs)
			}
			// Side by side, as the pair compared.
			contenders = append(contenders, contender{DeidJob1, func(rep int) (Sample, error) {
				r, err := job.runJob(ctx, cfg, in, 1, "job1", rep, false)
				if err == nil && r.Records != in.Lines {
					err = fmt.Errorf("one instance alone read %d records; the input has %d", r.Records, in.Lines)
				}
				return r.Sample, err
			}}, contender{DeidJobN, func(rep int) (Sample, error) {
				r, err := job.runJob(ctx, cfg, in, cfg.Instances, "jobn", rep, false)
				if err == nil {
					res.Job.Blobs = r.Blobs
					res.Job.InstanceRSSMB = nil
					for _, b := range r.RSS {
						res.Job.InstanceRSSMB = append(res.Job.InstanceRSSMB, float64(b)/(1<<20))
					}
				}
				return r.Sample, err
			}})
		}
	}

	samples := map[string][]Sample{}
	for rep := range cfg.Reps {
		// Rotate the order so that no contender always runs first (cold
		// page cache, a quieter machine).
		for k := range contenders {
			c := contenders[(k+rep)%len(contenders)]
			s, err := c.run(rep)
			if err != nil {
				return nil, fmt.Errorf("bench: %s (run %d): %w", c.name, rep+1, err)
			}
			samples[c.name] = append(samples[c.name], s)
			logf("  run %d/%d  %-15s %7.2fs wall %7.2fs CPU %6.0f MiB peak  (contention %s)", rep+1, cfg.Reps,
				c.name, s.Wall.Seconds(), s.CPU().Seconds(), float64(s.MaxRSS)/(1<<20), pct(s.Contention))
		}
	}
	for name, ss := range samples {
		res.Contenders[name] = summarize(ss, in.Lines, in.Bytes)
	}
	for _, other := range []string{DuckDB, DuckDBLenient, DecodeLimitC} {
		if os_, ok := samples[other]; ok {
			res.Ratios["deid_vs_"+other] = ratios(samples[Deid], os_)
		}
	}
	if alt, ok := samples[DeidAlt]; ok {
		// The other build's speed-up over deid.
		res.Ratios[DeidAlt+"_vs_deid"] = ratios(alt, samples[Deid])
	}
	if s3s, ok := samples[DeidS3]; ok {
		// What writing to object storage costs over a directory.
		res.Ratios[DeidS3+"_vs_deid"] = ratios(s3s, samples[Deid])
	}
	if dk, ok := samples[DeidKafka]; ok {
		r := ratios(dk, samples[KafkaConsumer])
		res.Ratios[KafkaRatio] = r
		res.Kafka.Ratio, res.Kafka.Target = &r, KafkaTarget
		// And what reading from Kafka costs deid over reading files.
		res.Ratios[DeidKafka+"_vs_deid"] = ratios(dk, samples[Deid])
	}
	if alt, ok := samples[DeidKafkaAlt]; ok {
		// The other build's speed-up over deid, in Kafka mode.
		res.Ratios[DeidKafkaAlt+"_vs_"+DeidKafka] = ratios(alt, samples[DeidKafka])
	}
	if jn, ok := samples[DeidJobN]; ok {
		// Several instances against one, and one instance of a job
		// against plain Kafka mode (state in a directory).
		res.Ratios[DeidJobN+"_vs_"+DeidJob1] = ratios(jn, samples[DeidJob1])
		res.Ratios[DeidJob1+"_vs_"+DeidKafka] = ratios(samples[DeidJob1], samples[DeidKafka])
		logf("bench: the job of %d instances once more, one killed a third of the way in (takeover)", cfg.Instances)
		r, err := job.runTakeover(ctx, cfg, in, cfg.Instances)
		if err != nil {
			return nil, fmt.Errorf("bench: takeover: %w", err)
		}
		res.Job.Takeover = r.Takeover
	}
	res.Targets = targets(res)
	if !cfg.SkipDuckDB {
		eq, err := compare(ctx, cfg, in, deidOut(cfg.Reps-1), duckOut(cfg.Reps-1))
		if err != nil {
			return nil, err
		}
		res.Equivalence = eq
	}
	if cfg.Scale > 1 {
		if res.Memory, err = memory(ctx, cfg, in, res, work, logf); err != nil {
			return nil, err
		}
	}
	if rep, err := verify.Run(ctx, deidOut(cfg.Reps-1), verify.Options{}); err == nil {
		for _, u := range rep.Summary.Utility {
			res.Utility = append(res.Utility, u.Text())
		}
	} else {
		res.Utility = []string{"utility: not measured: " + err.Error()}
	}
	res.Host.LoadEnd = LoadAvg()
	path, err := save(cfg.ResultsDir, res)
	if err != nil {
		return nil, err
	}
	Print(w, res)
	for _, u := range res.Utility {
		fmt.Fprintf(w, "utility: %s\n", u)
	}
	fmt.Fprintf(w, "results: %s\n", path)
	return res, nil
}

// removeBut removes dir unless keep.
func removeBut(dir string, keep bool) {
	if !keep {
		os.RemoveAll(dir)
	}
}

// ratios pairs deid's runs with another contender's, run by run: other's
// time over deid's, which is deid's throughput over other's.
func ratios(deid, other []Sample) Ratio {
	var wall, cpu []float64
	for i := range min(len(deid), len(other)) {
		wall = append(wall, other[i].Wall.Seconds()/deid[i].Wall.Seconds())
		cpu = append(cpu, other[i].CPU().Seconds()/deid[i].CPU().Seconds())
	}
	return Ratio{Wall: spread(wall), CPU: spread(cpu)}
}

// targets evaluates issue 5's targets on the medians.
func targets(res *Result) []Target {
	var ts []Target
	if r, ok := res.Ratios["deid_vs_"+DuckDB]; ok {
		ts = append(ts, Target{Name: "deid throughput / DuckDB (same SQL semantics)", Want: 1.5, Got: r.Wall.Median})
	}
	if r, ok := res.Ratios["deid_vs_"+DuckDBLenient]; ok {
		ts = append(ts, Target{Name: "deid throughput / DuckDB (typed read, its fastest idiom)", Want: 1.5, Got: r.Wall.Median})
	}
	d := res.Contenders[Deid]
	ts = append(ts, Target{Name: "deid events per CPU-second (M)", Want: 0.6, Got: d.EventsPerCPUSec.Median / 1e6})
	if r, ok := res.Ratios["deid_vs_"+DecodeLimitC]; ok {
		ts = append(ts, Target{Name: "deid throughput / decode limit", Want: 0.5, Got: r.Wall.Median})
	}
	if r, ok := res.Ratios[KafkaRatio]; ok {
		ts = append(ts, Target{Name: "deid Kafka-mode throughput / bare kafka-go consumer", Want: KafkaTarget, Got: r.Wall.Median})
	}
	if r, ok := res.Ratios[DeidKafka+"_vs_deid"]; ok {
		ts = append(ts, Target{Name: "deid Kafka mode / file mode, per CPU-second", Want: 0.9, Got: r.CPU.Median})
	}
	if r, ok := res.Ratios[DeidJobN+"_vs_"+DeidJob1]; ok {
		ts = append(ts, Target{Name: "job of several instances / one instance, per CPU-second", Want: JobTarget, Got: r.CPU.Median})
	}
	for i := range ts {
		ts[i].Met = ts[i].Got >= ts[i].Want
	}
	return ts
}

// compare runs the DuckDB script's equivalence check (not timed).
func compare(ctx context.Context, cfg Config, in *Input, deidOut, duckOut string) (json.RawMessage, error) {
	args := []string{cfg.Script, "compare", "--settings", in.Settings, "--region", cfg.Region, "--out", duckOut,
		"--deid-out", deidOut, "--threads", fmt.Sprint(cfg.Threads)}
	cmd := exec.CommandContext(ctx, cfg.Python, append(args, in.Events...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench: comparing DuckDB's cells with deid's: %w\n%s", err, tail(stderr.String(), 2000))
	}
	var check json.RawMessage
	if err := json.Unmarshal(out, &check); err != nil {
		return nil, fmt.Errorf("bench: comparing: %w: %s", err, out)
	}
	return check, nil
}

// memory runs deid once on cfg.Scale times the events generated, and once
// on the input with each event repeated cfg.Scale times.
func memory(ctx context.Context, cfg Config, in *Input, res *Result, work string, logf func(string, ...any)) (*Memory, error) {
	big := cfg.Gen
	big.Events *= cfg.Scale
	bigIn, err := Prepare(cfg.CacheDir, big, logf)
	if err != nil {
		return nil, fmt.Errorf("bench: scaled input: %w", err)
	}
	repIn, err := Repeat(in, cfg.Scale, logf)
	if err != nil {
		return nil, fmt.Errorf("bench: repeated input: %w", err)
	}
	run := func(name string, in *Input) (*ScaledRun, error) {
		out := filepath.Join(work, "deid-"+name)
		defer os.RemoveAll(out)
		s, err := Measure(ctx, "", nil, cfg.Deid, "run", "--input", in.Dir, "--settings", in.Settings,
			"--out", out, "--log-level", "error")
		if err != nil {
			return nil, fmt.Errorf("bench: deid on the %s input: %w", name, err)
		}
		logf("  %-8s %-15s %7.2fs wall %7.2fs CPU %6.0f MiB peak  (%d events)", name, Deid, s.Wall.Seconds(),
			s.CPU().Seconds(), float64(s.MaxRSS)/(1<<20), in.Lines)
		return &ScaledRun{Events: in.Lines, RSSMB: float64(s.MaxRSS) / (1 << 20), Wall: s.Wall.Seconds(), CPU: s.CPU().Seconds()}, nil
	}
	gen, err := run("scaled", bigIn)
	if err != nil {
		return nil, err
	}
	rep, err := run("repeated", repIn)
	if err != nil {
		return nil, err
	}
	return &Memory{Scale: cfg.Scale, BaseEvents: in.Lines, BigEvents: gen.Events,
		BaseRSSMB: res.Contenders[Deid].PeakRSSMB.Median, BigRSSMB: gen.RSSMB, BigWall: gen.Wall, BigCPU: gen.CPU,
		Repeated: rep}, nil
}

// save writes res as JSON under dir, named by its start time.
func save(dir string, res *Result) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, res.Started.Format("20060102T150405Z")+".json")
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// commit names the checked-out commit, read-only; "" outside a repository.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func pct(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}
