package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/s3test"
)

// TestS3StateOutage stops the S3 server that holds a run's checkpoints and
// its output in the middle of the run and starts it again 10 seconds later. Within
// storage.s3.retry_budget the run waits the outage out and its output is
// an uninterrupted run's; with a budget shorter than the outage it fails,
// saying why, with nothing half-committed, and a resume after the outage
// completes the same output.
func TestS3StateOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts an S3 server under a real process; not with -short")
	}
	bin := deidBinary(t)
	srv := s3test.Private(t)
	srv.Setenv(t)
	bucket := srv.Bucket(t)
	in := filepath.Join(t.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 12, 200_000, 2, 200
	stats, err := gen.WriteFiles(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DEID_PSEUDONYM_KEY=outage-test-key-0123456789")
	conf := func(budget time.Duration) string {
		p := filepath.Join(t.TempDir(), "deid.yaml")
		yaml := "pipeline:\n  checkpoint_interval: 100ms\n  segment_entries: 500\n" + s3Conf(srv) +
			fmt.Sprintf("    retry_backoff_max: 1s\n    retry_budget: %s\n", budget) +
			// A run that fails cannot release its lease while the server is
			// down; the resume takes it over once it is this old.
			"  lease_ttl: 5s\n"
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The anchor logs stay on the local disk, outside the outage.
	anchorDir := t.TempDir()
	anchorsOf := func(out string) string {
		return filepath.Join(anchorDir, strings.NewReplacer("s3://", "", "/", "_").Replace(out)+".anchors")
	}
	args := func(conf, out, state string) []string {
		return []string{"run", "--config", conf, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName),
			"--out", out, "--state-dir", state, "--anchors", anchorsOf(out)}
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if out, err := runProcess(bin, env, args(conf(time.Minute), ref, filepath.Join(t.TempDir(), "ref-state"))...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := datasetFiles(t, ref)

	// outage starts a run, stops the server once the run has stored a
	// checkpoint, starts it again 10 s later, and returns the run's exit
	// error and output.
	outage := func(t *testing.T, conf, out, state string) (string, error) {
		cmd := exec.Command(bin, args(conf, out, state)...)
		cmd.Env = env
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill() })
		prefix := strings.TrimPrefix(state, "s3://"+bucket+"/") + "/checkpoints/"
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			l, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Contents) > 0 {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("the run ended (%v) before it stored a checkpoint:\n%s", err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("no checkpoint stored after a minute")
			}
		}
		srv.Stop(t)
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before the outage began; it needs a larger input:\n%s", err, logs.String())
		default:
		}
		time.Sleep(10 * time.Second)
		srv.Start(t)
		select {
		case err := <-done:
			return logs.String(), err
		case <-time.After(2 * time.Minute):
			t.Fatalf("the run did not end within 2 minutes of the outage:\n%s", logs.String())
		}
		return "", nil
	}
	check := func(t *testing.T, conf, out string) {
		t.Helper()
		copy := verifiedS3Copy(t, srv, conf, out, anchorsOf(out))
		if diff := cmp.Diff(want, datasetFiles(t, copy)); diff != "" {
			t.Errorf("datasets differ from a run without an outage (-want +got):\n%s", diff)
		}
		excluded, _ := dispositions(t, copy) // fails on an entry written twice
		if diff := cmp.Diff(stats.Expected.Excluded, countValues(excluded)); diff != "" {
			t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
		}
	}

	t.Run("a run waits out an outage shorter than its retry budget", func(t *testing.T) {
		out, state := "s3://"+bucket+"/out/rides-out", "s3://"+bucket+"/state/rides-out"
		c := conf(time.Minute)
		logs, err := outage(t, c, out, state)
		if err != nil {
			t.Fatalf("the run failed: %v\n%s", err, logs)
		}
		if !strings.Contains(logs, "retrying a failed request within storage.s3.retry_budget") {
			t.Fatalf("the run never retried, so it met no outage:\n%s", logs)
		}
		check(t, c, out)
	})

	t.Run("an outage longer than the retry budget fails the run cleanly, and a resume completes it", func(t *testing.T) {
		out, state := "s3://"+bucket+"/out/gives-up", "s3://"+bucket+"/state/gives-up"
		c := conf(2 * time.Second)
		logs, err := outage(t, c, out, state)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("the run ended with %v through an outage longer than its retry budget, want exit status 1:\n%s", err, logs)
		}
		t.Logf("the failed run's last lines:\n%s", lastLines(logs, 3))
		if !strings.Contains(logs, "storage.s3.retry_budget") {
			t.Errorf("the failure does not name storage.s3.retry_budget:\n%s", logs)
		}
		// Nothing half-committed: what the failed run published verifies.
		if code, stdout, _ := deidExit("verify", out, "--config", c, "--anchors", anchorsOf(out)); code != 0 {
			t.Errorf("the failed run's output does not verify: exit %d\n%s", code, stdout)
		}
		if msg, err := runProcess(bin, env, args(c, out, state)...); err != nil {
			t.Fatalf("resume: %v\n%s", err, msg)
		}
		check(t, c, out)
	})
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
