package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
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
// no exclusion entry lost or repeated.
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
	stats, err := gen.WriteFiles(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "deid.yaml")
	// Frequent checkpoints, so that kills land between many of them.
	if err := os.WriteFile(conf, []byte("pipeline:\n  checkpoint_interval: 100ms\n  segment_entries: 500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every run anchors its commits beside its output, so that verify can
	// check that replays after a kill re-anchor consistently.
	args := func(out, state string) []string {
		return []string{"run", "--config", conf, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName),
			"--out", out, "--state-dir", state, "--anchors", out + ".anchors"}
	}
	env := append(os.Environ(), "DEID_PSEUDONYM_KEY=crash-test-key-0123456789")

	ref := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	if out, err := runProcess(bin, env, args(ref, filepath.Join(t.TempDir(), "ref-state"))...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	full := time.Since(start)
	want := datasetFiles(t, ref)
	if len(want) == 0 {
		t.Fatal("the uninterrupted run wrote no dataset file")
	}

	// Kill points spread over the whole run, some runs killed several times.
	const points = 12
	for i := 0; i < points; i++ {
		delay := full * time.Duration(i+1) / (points + 1)
		kills := 1 + i%3
		t.Run(fmt.Sprintf("kill %d× from %s", kills, delay.Round(time.Millisecond)), func(t *testing.T) {
			out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
			for k := 0; k < kills; k++ {
				killed, err := killAfter(bin, env, delay/time.Duration(k+1), args(out, state)...)
				if err != nil {
					t.Fatal(err)
				}
				if !killed {
					break // it finished before the kill
				}
			}
			if out, err := runProcess(bin, env, args(out, state)...); err != nil {
				t.Fatalf("restart: %v\n%s", err, out)
			}
			if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
				t.Errorf("datasets differ from the uninterrupted run (-want +got):\n%s", diff)
			}
			// Rolled-back segments were written again with other decision
			// times: the anchor log's rollback lines must account for that.
			if code, stdout, _ := deidExit("verify", out, "--anchors", out+".anchors"); code != 0 {
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
		})
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
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return false, fmt.Errorf("run ended before the kill: %v\n%s", err, out.String())
		}
		return false, nil
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
