package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/sinks/objstore"
)

// s3Sample is a small generated input for the tests of an s3:// output.
func s3Sample(t *testing.T) (in, settings string) {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Seed = 11
	cfg.Events = 4000
	cfg.Partitions = 2
	cfg.Workspaces = 80
	in = filepath.Join(t.TempDir(), "in")
	if _, err := gen.WriteFiles(in, cfg); err != nil {
		t.Fatal(err)
	}
	return in, filepath.Join(in, gen.SettingsFileName)
}

// s3Config writes a config whose storage block points at srv, with the
// server's credentials in the environment (the AWS chain), and returns
// its path. Each input file is read as one batch: the input position at
// which a partition closes a window (in the accounting records, so in the
// manifests that hash them) depends on batch boundaries and timing, and
// differs between two runs of one input to the same kind of output.
func s3Config(t *testing.T, srv *s3test.Server) string {
	t.Helper()
	srv.Setenv(t)
	path := filepath.Join(t.TempDir(), "deid.yaml")
	yaml := "input:\n  batch_size: 1048576\nstorage:\n  s3:\n    endpoint: " + srv.Endpoint + "\n    region: " + s3test.Region + "\n    force_path_style: true\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openTestStore opens url with the config's storage settings.
func openTestStore(t *testing.T, srv *s3test.Server, url string) objstore.Store {
	t.Helper()
	cfg := objstore.DefaultConfig()
	cfg.S3.Endpoint, cfg.S3.Region, cfg.S3.ForcePathStyle = srv.Endpoint, s3test.Region, true
	st, err := objstore.Open(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fixedRun fixes what differs between two runs of one input (the
// processing clock, hence decision times, and the pseudonym key), so that
// their outputs can be compared byte for byte.
func fixedRun(t *testing.T) {
	t.Helper()
	t0 := time.Now().UTC().Truncate(time.Second)
	old := processingClock
	processingClock = func() time.Time { return t0 }
	t.Cleanup(func() { processingClock = old })
	t.Setenv("DEID_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
}

// claimObject tells whether key is one of the claim's own objects (the
// lock and the binding, which name the run that wrote them).
func claimObject(key string) bool {
	return key == outLockName || strings.HasPrefix(key, outLockName+"/") || key == outBindingName
}

// storeObjects reads every object of st but the claim's.
func storeObjects(t *testing.T, st objstore.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	infos, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, in := range infos {
		if claimObject(in.Key) {
			continue
		}
		rc, err := st.Get(ctx, in.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[in.Key] = string(b)
	}
	return got
}

// dirFiles reads every file under dir but the claim's, by slash path.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if key := filepath.ToSlash(rel); !claimObject(key) {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[key] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestS3OutputIsTheLocalOutputByteForByte runs one input to a directory
// and to s3://, and expects the same objects under the same names with the
// same bytes — data files, manifests, accounting records, exclusion
// segments, dead letters — then verifies the s3:// output, with its anchor
// log on another bucket, against the input.
func TestS3OutputIsTheLocalOutputByteForByte(t *testing.T) {
	srv := s3test.Require(t)
	cfg := s3Config(t, srv)
	in, settings := s3Sample(t)
	fixedRun(t)

	local := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", local,
		"--anchors", filepath.Join(t.TempDir(), "anchors.ndjson"))
	out := "s3://" + srv.Bucket(t) + "/deid/out"
	anchorLog := "s3://" + srv.Bucket(t) + "/anchors"
	stdout := deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", out, "--anchors", anchorLog)
	if !strings.Contains(stdout, out+"/datasets/") {
		t.Errorf("the summary does not name the s3:// output:\n%s", stdout)
	}

	want, got := dirFiles(t, local), storeObjects(t, openTestStore(t, srv, out))
	kinds := map[string]int{}
	for k := range want {
		kinds[strings.SplitN(k, "/", 2)[0]]++
	}
	for _, kind := range []string{"datasets", "accounting", "exclusions", "dead-letters"} {
		if kinds[kind] == 0 {
			t.Errorf("the local run wrote nothing under %s/: the comparison would prove nothing", kind)
		}
	}
	if diff := cmp.Diff(objectKeys(want), objectKeys(got)); diff != "" {
		t.Fatalf("the s3:// output's names differ from the directory's (-local +s3):\n%s", diff)
	}
	for k := range want {
		if want[k] != got[k] {
			t.Errorf("%s differs on s3:// (-local +s3):\n%s", k, cmp.Diff(want[k], got[k]))
		}
	}
	if ok, err := objstore.Exists(context.Background(), openTestStore(t, srv, out), outBindingName); err != nil || !ok {
		t.Errorf("the s3:// output has no binding object %s (%v)", outBindingName, err)
	}

	code, vout, verr := deidExit("verify", out, "--config", cfg, "--anchors", anchorLog, "--input", in, "--settings", settings)
	if code != 0 || !strings.Contains(vout, "VERIFIED: all") {
		t.Fatalf("verify %s: exit %d\n%s\n%s", out, code, vout, verr)
	}
	if strings.Contains(vout, os.TempDir()+string(filepath.Separator)+"deid-verify-") {
		t.Errorf("verify's report names its local copy instead of %s:\n%s", out, vout)
	}
	if !strings.Contains(vout, anchorLog) {
		t.Errorf("verify's report does not name the anchor log %s:\n%s", anchorLog, vout)
	}
	// deid report writes its page from it, naming the URL.
	html := filepath.Join(t.TempDir(), "report.html")
	code, rout, rerr := deidExit("report", out, "--config", cfg, "--html", html)
	page, _ := os.ReadFile(html)
	if code != 0 || !strings.Contains(rout, "wrote "+html) || !strings.Contains(string(page), out) || strings.Contains(string(page), "deid-verify-") {
		t.Errorf("report %s: exit %d, the page names the URL %v and not its copy %v\n%s\n%s", out, code,
			strings.Contains(string(page), out), !strings.Contains(string(page), "deid-verify-"), rout, rerr)
	}
	// And deid exclusions reads it too.
	code, eout, eerr := deidExit("exclusions", out, "--config", cfg, "--workspace", "ws-0001")
	if code != 0 || !strings.Contains(eout, "Workspace ws-0001 in "+out) {
		t.Errorf("exclusions %s: exit %d\n%s\n%s", out, code, eout, eerr)
	}
}

func objectKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestTwoRunsOnOneS3OutputCommitEachWindowOnce: a run on an s3:// output
// whose lease another process holds is refused before it writes, naming the
// holder; two runs started at once on a new s3:// output leave one output,
// with one manifest per window, and the run that lost is refused with exit 2
// (the lease, or an output already begun), never a second commit. (Two
// writers that both reach a window's manifest are the sinks' test:
// sinks/parquet TestTwoWritersRacingOnOneWindowOnS3CommitItOnce.)
func TestTwoRunsOnOneS3OutputCommitEachWindowOnce(t *testing.T) {
	srv := s3test.Require(t)
	cfg := s3Config(t, srv)
	in, settings := s3Sample(t)
	fixedRun(t)
	out := "s3://" + srv.Bucket(t) + "/out"
	st := openTestStore(t, srv, out)
	ctx := context.Background()

	holder, err := claim.AcquireLease(ctx, st, outLockName, "out", claim.DefaultLeaseOptions())
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := deidExit("run", "--config", cfg, "--input", in, "--settings", settings, "--out", out)
	if code != 2 || !strings.Contains(stderr, "out: "+out+" is locked by pid") {
		t.Fatalf("a run on a locked s3:// output: exit %d, want 2 naming the holder\n%s", code, stderr)
	}
	if got := storeObjects(t, st); len(got) != 0 {
		t.Errorf("the refused run wrote %v", objectKeys(got))
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	codes := make([]int, 2)
	outs := make([]string, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var so, se strings.Builder
			codes[i] = run([]string{"run", "--config", cfg, "--input", in, "--settings", settings, "--out", out}, &so, &se)
			outs[i] = so.String() + se.String()
		}()
	}
	wg.Wait()
	if !(codes[0] == 0 && codes[1] == 2 || codes[0] == 2 && codes[1] == 0) {
		t.Fatalf("exits %v, want one run to succeed and the other refused with 2\n%s\n---\n%s", codes, outs[0], outs[1])
	}
	loser := outs[0]
	if codes[1] == 2 {
		loser = outs[1]
	}
	if !strings.Contains(loser, "is locked by") && !strings.Contains(loser, "is not empty") {
		t.Errorf("the refused run does not say why:\n%s", loser)
	}
	local := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", local)
	want, got := dirFiles(t, local), storeObjects(t, st)
	if diff := cmp.Diff(objectKeys(want), objectKeys(got)); diff != "" {
		t.Errorf("the s3:// output after two runs is not one run's (-one run +s3):\n%s", diff)
	}
}

// TestARunRefusesAnS3StoreThatIgnoresConditionalWrites: behind a store that
// drops If-None-Match, two writers could both commit a window; deid run
// refuses to start there, exit 2, naming the store, having written nothing.
func TestARunRefusesAnS3StoreThatIgnoresConditionalWrites(t *testing.T) {
	srv := s3test.Require(t)
	proxy := srv.IgnoreIfNoneMatch(t)
	srv.Setenv(t)
	cfg := filepath.Join(t.TempDir(), "deid.yaml")
	yaml := "storage:\n  s3:\n    endpoint: " + proxy.Endpoint + "\n    region: " + s3test.Region + "\n    force_path_style: true\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	in, settings := s3Sample(t)
	out := "s3://" + srv.Bucket(t) + "/out"
	code, stdout, stderr := deidExit("run", "--config", cfg, "--input", in, "--settings", settings, "--out", out)
	want := "out: objstore: " + out + " does not honour conditional writes (If-None-Match); deid cannot commit windows safely there"
	if code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, want 2 saying %q\n%s\n%s", code, want, stdout, stderr)
	}
	if proxy.Stripped() == 0 {
		t.Error("the run sent no conditional write through the proxy: the refusal was not the probe's")
	}
	if got := storeObjects(t, openTestStore(t, srv, out)); len(got) != 0 {
		t.Errorf("the refused run left %v", objectKeys(got))
	}
}

// TestAnS3OutputIsBoundToItsKeyAndStateDirectory: an s3:// output written
// with a state directory refuses a run with another state directory or
// another pseudonym key, exit 2, saying what differs, and a refused run
// binds nothing (its new state directory stays unbound); the run that wrote
// it resumes.
func TestAnS3OutputIsBoundToItsKeyAndStateDirectory(t *testing.T) {
	srv := s3test.Require(t)
	cfg := s3Config(t, srv)
	in, settings := s3Sample(t)
	out := "s3://" + srv.Bucket(t) + "/out"
	stateA, stateB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	args := func(state string) []string {
		return []string{"run", "--config", cfg, "--input", in, "--settings", settings, "--out", out, "--state-dir", state}
	}
	t.Setenv("DEID_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
	deid(t, args(stateA)...)

	code, _, stderr := deidExit(args(stateB)...)
	// A new state directory starts a file-mode run over, which an output
	// already written refuses (as a directory does).
	if code != 2 || !strings.Contains(stderr, "out: "+out+" is not empty (it holds _deid_binding.json)") {
		t.Fatalf("another state directory: exit %d, want 2 saying the output is begun\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(stateB, stateBindingName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused run bound its state directory: %v", err)
	}
	t.Setenv("DEID_PSEUDONYM_KEY", "fedcba9876543210fedcba9876543210")
	code, _, stderr = deidExit(args(stateA)...)
	if code != 2 || !strings.Contains(stderr, "is bound to another pseudonym key") {
		t.Fatalf("another key: exit %d, want 2 saying so\n%s", code, stderr)
	}
	t.Setenv("DEID_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
	deid(t, args(stateA)...)
}

// TestARunWhoseS3LeaseIsTakenOverCommitsNoWindow: while a run reads its
// input, another process takes its lease over (a lock object of the next
// generation appears, as a taker of a lease it found stale writes); the
// run's fence finds it before the first window's manifest, and the run
// fails, naming the takeover, having committed no window.
func TestARunWhoseS3LeaseIsTakenOverCommitsNoWindow(t *testing.T) {
	srv := s3test.Require(t)
	cfg := s3Config(t, srv)
	g := gen.DefaultConfig()
	g.Seed, g.Events, g.Partitions, g.Workspaces = 5, 30000, 2, 100
	in := filepath.Join(t.TempDir(), "in")
	if _, err := gen.WriteFiles(in, g); err != nil {
		t.Fatal(err)
	}
	out := "s3://" + srv.Bucket(t) + "/out"
	st := openTestStore(t, srv, out)
	ctx := context.Background()

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, so, se := deidExit("run", "--config", cfg, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName), "--out", out)
		done <- result{code, so, se}
	}()
	first := outLockName + "/00000000000000000001"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if ok, _ := objstore.Exists(ctx, st, first); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run took no lease within 30s")
		}
	}
	taker := `{"pid":1,"host":"other","since":"2026-12-03T00:00:00Z","generation":2,"heartbeat":"2026-12-03T00:00:00Z"}` + "\n"
	if err := st.Put(ctx, outLockName+"/00000000000000000002", strings.NewReader(taker), objstore.PutOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code == 0 || !strings.Contains(r.stderr, "generation 2 took the lock over from this process's generation 1") {
		t.Fatalf("exit %d, want a failure naming the takeover\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for k := range storeObjects(t, st) {
		if strings.HasSuffix(k, "/_manifest.json") {
			t.Errorf("the run committed %s after its lease was taken over", k)
		}
	}
}
