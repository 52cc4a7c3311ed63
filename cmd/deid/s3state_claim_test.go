package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/sinks/objstore"
)

// TestS3StateIsLockedAndBound: a state_dir on S3 is claimed as a directory
// is (contract §9) — while another process holds its lease a run is refused
// with exit 2 naming the holder, before it writes anything; once free, a run
// binds it; a run with another pseudonym key is refused by the binding.
func TestS3StateIsLockedAndBound(t *testing.T) {
	srv := s3test.Require(t)
	srv.Setenv(t)
	bucket := srv.Bucket(t)
	in := filepath.Join(t.TempDir(), "in")
	g := gen.DefaultConfig()
	g.Seed, g.Events, g.Partitions = 3, 2_000, 1
	if _, err := gen.WriteFiles(in, g); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "deid.yaml")
	if err := os.WriteFile(conf, []byte(s3Conf(srv)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf("s3://%s/state", bucket)
	run := func(out string) (int, string) {
		code, stdout, stderr := deidExit("run", "--config", conf, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName),
			"--out", out, "--state-dir", state)
		return code, stdout + stderr
	}
	cfg := defaultConfig()
	cfg.Storage.S3.Endpoint, cfg.Storage.S3.ForcePathStyle = srv.Endpoint, true
	st, err := objstore.Open(state, cfg.Storage)
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv("DEID_PSEUDONYM_KEY", "s3-claim-key-one-0123456789")
	held, err := claim.AcquireLease(context.Background(), st, stateLockName, "state_dir", claim.DefaultLeaseOptions())
	if err != nil {
		t.Fatal(err)
	}
	code, msg := run(filepath.Join(t.TempDir(), "out"))
	if code != 2 || !strings.Contains(msg, "state_dir: "+state+" is locked by pid "+fmt.Sprint(os.Getpid())) {
		t.Fatalf("a run on a state_dir another process holds: exit %d, want 2 naming the holder:\n%s", code, msg)
	}
	if ok, _ := objstore.Exists(context.Background(), st, stateBindingName); ok {
		t.Fatal("the refused run wrote the state's binding")
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}

	if code, msg := run(filepath.Join(t.TempDir(), "out")); code != 0 {
		t.Fatalf("a run on a free state_dir: exit %d\n%s", code, msg)
	}
	if ok, err := objstore.Exists(context.Background(), st, stateBindingName); !ok || err != nil {
		t.Fatalf("the run left no binding in the state_dir (%v)", err)
	}

	t.Setenv("DEID_PSEUDONYM_KEY", "s3-claim-key-two-0123456789")
	code, msg = run(filepath.Join(t.TempDir(), "out"))
	if code != 2 || !strings.Contains(msg, "state_dir: "+state+" is bound to another pseudonym key") {
		t.Fatalf("a run with another key on a bound state_dir: exit %d, want 2 naming the key:\n%s", code, msg)
	}
}
