package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/sinks/objstore"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// deidBinary builds deid once (without the race detector, so that a run
// takes as long as it does in production) and returns its path.
func deidBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deid-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "deid")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestKillAnywhereThenResume kills deid with SIGKILL at many points of a
// file run with checkpoints, restarts it until it completes, and checks the
// promise of contract §9: the datasets are byte-identical to those of an
// uninterrupted run, and every input record has exactly one disposition —
// no exclusion entry lost or repeated. It does so with the checkpoints in a
// local directory and on S3 (a real server).
func TestKillAnywhereThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a real process; not with -short")
	}
	bin := deidBinary(t)
	in := filepath.Join(t.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Seed = 11
	cfg.Events = 40_000
	cfg.Partitions = 2
	cfg.Workspaces = 200
	// Many duplicates, each a few lines after its original, so that a
	// resume that loses a dedup key its checkpoint counts (or keeps one it
	// does not) changes the datasets and the exclusion entries.
	cfg.Rates.Duplicate = 0.1
	stats, err := gen.WriteFiles(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Frequent checkpoints, so that kills land between many of them.
	const pipelineConf = "pipeline:\n  checkpoint_interval: 100ms\n  segment_entries: 500\n"
	writeConf := func(t *testing.T, extra string) string {
		conf := filepath.Join(t.TempDir(), "deid.yaml")
		if err := os.WriteFile(conf, []byte(pipelineConf+extra), 0o644); err != nil {
			t.Fatal(err)
		}
		return conf
	}
	// Every run anchors its commits to a file of its own, so that verify
	// can check that replays after a kill re-anchor consistently. They all
	// live in the test's directory, removed with it.
	anchorDir := t.TempDir()
	anchorsOf := func(out string) string {
		return filepath.Join(anchorDir, fmt.Sprintf("%x.anchors", sha256.Sum256([]byte(out))))
	}
	args := func(conf, out, state string) []string {
		return []string{"run", "--config", conf, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName),
			"--out", out, "--state-dir", state, "--anchors", anchorsOf(out)}
	}
	keyEnv := "DEID_PSEUDONYM_KEY=crash-test-key-0123456789"

	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := runProcess(bin, append(os.Environ(), keyEnv), args(writeConf(t, ""), ref, filepath.Join(t.TempDir(), "ref-state"))...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := datasetFiles(t, ref)
	if len(want) == 0 {
		t.Fatal("the uninterrupted run wrote no dataset file")
	}

	// Where the checkpoints and the output go: a fresh place for each kill
	// point.
	type stateAt struct {
		conf  string
		env   []string
		state func(t *testing.T, i int) string
		out   func(t *testing.T, i int) string
		// local returns a local copy of out to read.
		local func(t *testing.T, out string) string
		// afterKill is how long a killed run holds its lock: a lease on
		// object storage lasts its TTL (storage.lease_ttl) past the last
		// heartbeat, a flock dies with the process.
		afterKill time.Duration
		// checkpointed tells whether a checkpoint is stored under state.
		checkpointed func(t *testing.T, state string) bool
	}
	stores := map[string]func(t *testing.T) stateAt{
		"local state": func(t *testing.T) stateAt {
			return stateAt{conf: writeConf(t, ""), env: append(os.Environ(), keyEnv), state: func(t *testing.T, _ int) string { return filepath.Join(t.TempDir(), "state") },
				out:   func(t *testing.T, _ int) string { return filepath.Join(t.TempDir(), "out") },
				local: func(t *testing.T, out string) string { return out },
				checkpointed: func(t *testing.T, state string) bool {
					ckpts, _ := filepath.Glob(filepath.Join(state, "checkpoints", "*", "*.ckpt"))
					return len(ckpts) > 0
				}}
		},
		"s3 state and out": func(t *testing.T) stateAt {
			srv := s3test.Require(t)
			srv.Setenv(t)
			bucket := srv.Bucket(t)
			const ttl = 3 * time.Second
			conf := writeConf(t, s3Conf(srv)+fmt.Sprintf("  lease_ttl: %s\n", ttl))
			return stateAt{conf: conf, env: append(os.Environ(), keyEnv), afterKill: ttl + time.Second,
				state: func(t *testing.T, i int) string { return fmt.Sprintf("s3://%s/state/%d", bucket, i) },
				out:   func(t *testing.T, i int) string { return fmt.Sprintf("s3://%s/out/%d", bucket, i) },
				local: func(t *testing.T, out string) string {
					return verifiedS3Copy(t, srv, conf, out, anchorsOf(out))
				},
				checkpointed: func(t *testing.T, state string) bool {
					prefix := strings.TrimPrefix(state, "s3://"+bucket+"/") + "/checkpoints/"
					l, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
					if err != nil {
						t.Fatal(err)
					}
					return len(l.Contents) > 0
				}}
		},
	}
	for _, name := range []string{"local state", "s3 state and out"} {
		t.Run(name, func(t *testing.T) {
			st := stores[name](t)
			// An uninterrupted run here first: its output is the local one's,
			// and its time spreads the kill points over a run.
			begin := time.Now()
			out := st.out(t, 1000)
			if msg, err := runProcess(bin, st.env, args(st.conf, out, st.state(t, 1000))...); err != nil {
				t.Fatalf("uninterrupted run: %v\n%s", err, msg)
			}
			full := time.Since(begin)
			if diff := cmp.Diff(want, datasetFiles(t, st.local(t, out))); diff != "" {
				t.Fatalf("an uninterrupted run's datasets differ from the local one's (-local +here):\n%s", diff)
			}
			// Kill points spread over the whole run, some runs killed several
			// times; a few more than the 10 that must land, since a run may
			// be quicker than the reference on a busy machine.
			const points = 14
			// landed counts the kill points where a kill came after the
			// first checkpoint: those test the resume from one.
			landed := 0
			defer func() {
				if landed < 10 {
					t.Errorf("only %d of %d kill points killed a run that had stored a checkpoint; want at least 10", landed, points)
				}
			}()
			for i := 0; i < points; i++ {
				delay := full * time.Duration(i+1) / (points + 1)
				kills := 1 + i%3
				t.Run(fmt.Sprintf("kill %d×, the first %s after a checkpoint", kills, delay.Round(time.Millisecond)), func(t *testing.T) {
					// The first kill comes d after the run stored its first
					// checkpoint. A run may be quicker than the calibration on
					// a busy machine: a kill point the run ended before is
					// tried again, on a fresh output, a third earlier.
					var out, state string
					d := delay
					for try := 0; ; try++ {
						out, state = st.out(t, 100*i+try), st.state(t, 100*i+try)
						ready := func() bool { return st.checkpointed(t, state) }
						killed, err := killWhen(bin, st.env, ready, d, args(st.conf, out, state)...)
						if err != nil {
							t.Fatal(err)
						}
						if killed || try == 3 {
							if killed {
								landed++
							}
							break
						}
						d = d * 2 / 3
					}
					for k := 1; k < kills; k++ {
						time.Sleep(st.afterKill)
						killed, err := killAfter(bin, st.env, d/time.Duration(k+1), args(st.conf, out, state)...)
						if err != nil {
							t.Fatal(err)
						}
						if !killed {
							break // it finished before the kill
						}
					}
					time.Sleep(st.afterKill)
					if out, err := runProcess(bin, st.env, args(st.conf, out, state)...); err != nil {
						t.Fatalf("restart: %v\n%s", err, out)
					}
					checkResumed(t, want, st.local(t, out), anchorsOf(out), stats)
				})
			}
		})
	}
}

// s3Conf is the storage section that points deid at srv.
// verifiedS3Copy verifies an s3:// output where it is, with the run's
// storage settings (conf) and its anchor log, and returns a local copy of
// it for the checks that read files.
func verifiedS3Copy(t *testing.T, srv *s3test.Server, conf, out, anchors string) string {
	t.Helper()
	if code, stdout, _ := deidExit("verify", out, "--config", conf, "--anchors", anchors); code != 0 {
		t.Errorf("the output does not verify on S3: exit %d\n%s", code, stdout)
	}
	cfg := defaultConfig()
	cfg.Storage.S3.Endpoint, cfg.Storage.S3.ForcePathStyle = srv.Endpoint, true
	st, err := objstore.Open(out, cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	if err := verify.Mirror(context.Background(), st, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func s3Conf(srv *s3test.Server) string {
	return fmt.Sprintf("storage:\n  s3:\n    endpoint: %s\n    region: %s\n    force_path_style: true\n", srv.Endpoint, s3test.Region)
}

// checkResumed checks a resumed run's output against an uninterrupted
// run's datasets and the input's expected dispositions.
func checkResumed(t *testing.T, want map[string]string, out, anchors string, stats gen.Stats) {
	t.Helper()
	if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
		t.Errorf("datasets differ from the uninterrupted run (-want +got):\n%s", diff)
	}
	// Rolled-back segments were written again with other decision
	// times: the anchor log's rollback lines must account for that.
	if code, stdout, _ := deidExit("verify", out, "--anchors", anchors); code != 0 {
		t.Errorf("the resumed output does not verify against its anchors: exit %d\n%s", code, stdout)
	}
	excluded, dead := dispositions(t, out)
	byReason := countValues(excluded)
	if diff := cmp.Diff(stats.Expected.Excluded, byReason); diff != "" {
		t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
	}
	if int64(len(dead)) != stats.Malformed["invalid_json"]+sumExcept(stats.Malformed, "invalid_json") {
		t.Errorf("%d dead letters, want %d", len(dead), sumExcept(stats.Malformed, ""))
	}
}

func sumExcept(m map[string]int64, skip string) int64 {
	var n int64
	for k, v := range m {
		if k != skip {
			n += v
		}
	}
	return n
}

func runProcess(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	return cmd.CombinedOutput()
}

// killAfter starts deid, sends it SIGKILL after d and reports whether it
// was still running then.
func killAfter(bin string, env []string, d time.Duration, args ...string) (bool, error) {
	return killWhen(bin, env, func() bool { return true }, d, args...)
}

// killWhen starts deid, waits until ready (polled) says so, sends it
// SIGKILL d later and reports whether it was still running then.
func killWhen(bin string, env []string, ready func() bool, d time.Duration, args ...string) (bool, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ended := func(err error) (bool, error) {
		if err != nil {
			return false, fmt.Errorf("run ended before the kill: %v\n%s", err, out.String())
		}
		return false, nil
	}
	for !ready() {
		select {
		case err := <-done:
			return ended(err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		return ended(err)
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return true, nil
	}
}

// TestCheckpointsOfAnInputOfOneEventType runs with checkpoints on an input
// that feeds one dataset only (a topic of campaign events, say): its
// windows have no partial for the other dataset, and a checkpoint must
// still be written and restored — the datasets equal a run without them.
func TestCheckpointsOfAnInputOfOneEventType(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real process over every checkpoint of an input; not with -short")
	}
	bin := deidBinary(t)
	gen0 := filepath.Join(t.TempDir(), "gen")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions = 5, 20_000, 1
	if _, err := gen.WriteFiles(gen0, cfg); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(gen0, "events-00.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var campaign []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if bytes.Contains(line, []byte(`"campaign.metrics"`)) {
			campaign = append(campaign, line...)
		}
	}
	in := filepath.Join(t.TempDir(), "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "events-00.ndjson"), campaign, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "deid.yaml")
	if err := os.WriteFile(conf, []byte("pipeline:\n  checkpoint_interval: 1ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DEID_PSEUDONYM_KEY=one-type-key-0123456789")
	args := []string{"run", "--config", conf, "--input", in, "--settings", filepath.Join(gen0, gen.SettingsFileName)}
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := runProcess(bin, env, append(args, "--out", ref)...); err != nil {
		t.Fatalf("without checkpoints: %v\n%s", err, out)
	}
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	// Killed once midway, so that a checkpoint is also read back.
	if _, err := killAfter(bin, env, 150*time.Millisecond, append(args, "--out", out, "--state-dir", state)...); err != nil {
		t.Fatal(err)
	}
	if msg, err := runProcess(bin, env, append(args, "--out", out, "--state-dir", state)...); err != nil {
		t.Fatalf("with checkpoints: %v\n%s", err, msg)
	}
	want := datasetFiles(t, ref)
	if len(want) == 0 {
		t.Fatal("no dataset written")
	}
	if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
		t.Errorf("datasets differ with checkpoints (-without +with):\n%s", diff)
	}
}
