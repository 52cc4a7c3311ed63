package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/transforms/aggregate"
)

// smallSample writes a generated input of a few days to a new directory
// and returns it.
func smallSample(t *testing.T, seed int64, events int) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = seed, events, 2, 120
	if _, err := gen.WriteFiles(in, cfg); err != nil {
		t.Fatal(err)
	}
	return in
}

// fileRun is the command line of a file-mode run of in.
func fileRun(in, out, state string, extra ...string) []string {
	args := append([]string{"run", "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName), "--out", out}, extra...)
	if state != "" {
		args = append(args, "--state-dir", state)
	}
	return args
}

// tree maps every file under dir but the lock files to its SHA-256.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == outLockName || d.Name() == stateLockName {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = fmt.Sprintf("%x", sha256Sum(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "deid.yaml")
	writeFile(t, path, content)
	return path
}

// TestThePolicyVersionHashesOnlyWhatChangesOutputs: the policy version is
// in every data file's metadata and binds the state directory, so an
// operational knob must leave it as it is, and anything that changes what
// is excluded or published must change it.
func TestThePolicyVersionHashesOnlyWhatChangesOutputs(t *testing.T) {
	base := defaultConfig()
	tests := []struct {
		name    string
		change  func(c *Config)
		changes bool
	}{
		{"the checkpoint interval is operational", func(c *Config) { c.Pipeline.CheckpointInterval = time.Millisecond }, false},
		{"the exclusion segment size is operational", func(c *Config) { c.Pipeline.SegmentEntries = 7 }, false},
		{"the idle timeout is operational", func(c *Config) { c.Pipeline.IdleTimeout = time.Hour }, false},
		{"the decoder's intern table is operational", func(c *Config) { c.Decode.InternEntries = 3 }, false},
		{"the settings file's path is input, not policy", func(c *Config) { c.Consent.SettingsPath = "elsewhere.ndjson" }, false},
		{"a dataset's description is documentation", func(c *Config) { c.Datasets[0].Description = "other words" }, false},
		{"paths, batch sizes, addresses, timeouts and limits are operational", func(c *Config) {
			c.Out, c.StateDir, c.HTTPAddr = "o", "s", ":1"
			c.Input.BatchSize, c.Input.Paths = 7, []string{"x"}
			c.ShutdownTimeout, c.MemoryLimit = time.Hour, 1<<30
			c.Kafka.Brokers, c.Kafka.FetchMaxBytes = []string{"b:1"}, 1
			c.Parquet.MaxRowGroupRows = 9
		}, false},
		{"the window changes outputs", func(c *Config) { c.Pipeline.Window = 12 * time.Hour }, true},
		{"the allowed lateness changes outputs", func(c *Config) { c.Pipeline.AllowedLateness = 2 * time.Hour }, true},
		{"the out-of-orderness changes outputs", func(c *Config) { c.Pipeline.MaxOutOfOrderness = time.Minute }, true},
		{"the future skew changes outputs", func(c *Config) { c.Pipeline.MaxFutureSkew = time.Hour }, true},
		{"the consent default changes outputs", func(c *Config) { c.Consent.Unknown = "include" }, true},
		{"a decoder bound changes outputs", func(c *Config) { c.Decode.MaxDimensionBytes = 64 }, true},
		{"the longest line kept changes outputs", func(c *Config) { c.Input.MaxLineBytes = 1 << 10 }, true},
		{"k changes outputs", func(c *Config) { c.Datasets[0].Privacy.K = 20 }, true},
		{"a hierarchy changes outputs", func(c *Config) { c.Datasets[0].Ladder = c.Datasets[0].Ladder[1:] }, true},
		{"a dataset's event types change outputs", func(c *Config) { c.Datasets = c.Datasets[:1] }, true},
		{"the generalization strategy changes outputs", func(c *Config) { c.Datasets[1].Privacy.Generalization = "ladder" }, true},
		{"a strategy left out is the default one", func(c *Config) { c.Datasets[0].Privacy.Generalization = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			tt.change(&c)
			if got := c.policyVersion() != base.policyVersion(); got != tt.changes {
				t.Errorf("policy version changed: %v, want %v (%s)", got, tt.changes, base.policy().Diff(c.policy()))
			}
		})
	}
}

func TestAHierarchyTableIsPolicyByItsContent(t *testing.T) {
	t.Chdir(t.TempDir())
	c := defaultConfig()
	before := c.policyVersion()
	// A table of the built-in's name in the working directory replaces it.
	writeFile(t, "region.csv", "FR;europe;*\n")
	if c.policyVersion() == before {
		t.Error("a different region.csv leaves the policy version as it was")
	}
}

// TestAnOperationalKnobLeavesDataFilesIdentical: the checkpoint interval and
// the segment size change how a run goes, not what it publishes, so the
// data files (which name the policy version) are byte-identical.
func TestAnOperationalKnobLeavesDataFilesIdentical(t *testing.T) {
	t.Setenv("DEID_PSEUDONYM_KEY", "knob-test-key-0123456789")
	in := smallSample(t, 3, 4000)
	var got []map[string]string
	for _, conf := range []string{
		"pipeline:\n  checkpoint_interval: 10s\n  segment_entries: 100000\n",
		"pipeline:\n  checkpoint_interval: 1ms\n  segment_entries: 50\n  idle_timeout: 3m\n",
	} {
		out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
		deid(t, fileRun(in, out, state, "--config", writeConfig(t, conf))...)
		got = append(got, datasetFiles(t, out))
	}
	if len(got[0]) == 0 {
		t.Fatal("no data file written")
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("data files differ with another checkpoint interval (-10s +1ms):\n%s", diff)
	}
}

// TestAStateDirectoryResumesOnlyUnderItsKeyAndPolicy: a run with another
// pseudonym key or a policy that changes outputs is refused before it
// touches anything (exit 2), saying what differs and how to start over; an
// operational knob may change.
func TestAStateDirectoryResumesOnlyUnderItsKeyAndPolicy(t *testing.T) {
	in := smallSample(t, 4, 3000)
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	t.Setenv("DEID_PSEUDONYM_KEY", "binding-key-a-0123456789")
	deid(t, fileRun(in, out, state)...)
	before, stateBefore := tree(t, out), tree(t, state)

	refused := []struct {
		name string
		key  string
		conf string
		want []string
	}{
		{"another key", "binding-key-b-0123456789", "",
			[]string{"state_dir: ", "is bound to another pseudonym key", "start over with a new state_dir and a new out"}},
		{"another window", "", "pipeline:\n  window: 12h\n",
			[]string{"state_dir: ", "pipeline.window: 24h0m0s → 12h0m0s", "start over with a new state_dir and a new out"}},
		{"another k", "", datasetsConfig(t, func(p *aggregate.PrivacyConfig) { p.K = 12 }),
			[]string{"datasets[0].privacy.k: 10 → 12"}},
		{"another generalization strategy", "", datasetsConfig(t, func(p *aggregate.PrivacyConfig) { p.Generalization = "ladder" }),
			[]string{"datasets[0].privacy.generalization: mondrian → ladder"}},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if tt.key != "" {
				t.Setenv("DEID_PSEUDONYM_KEY", tt.key)
			}
			args := fileRun(in, out, state)
			if tt.conf != "" {
				args = append(args, "--config", writeConfig(t, tt.conf))
			}
			code, _, stderr := deidExit(args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("the message does not say %q:\n%s", w, stderr)
				}
			}
			if diff := cmp.Diff(before, tree(t, out)); diff != "" {
				t.Errorf("a refused run changed the output:\n%s", diff)
			}
			if diff := cmp.Diff(stateBefore, tree(t, state)); diff != "" {
				t.Errorf("a refused run changed the state directory:\n%s", diff)
			}
		})
	}
	t.Run("another checkpoint interval resumes", func(t *testing.T) {
		deid(t, append(fileRun(in, out, state), "--config", writeConfig(t, "pipeline:\n  checkpoint_interval: 1s\n"))...)
		if diff := cmp.Diff(datasetFilesOf(before), datasetFiles(t, out)); diff != "" {
			t.Errorf("datasets changed:\n%s", diff)
		}
	})
}

// datasetsConfig is a config of the default datasets with campaign_metrics'
// privacy settings changed by change.
func datasetsConfig(t *testing.T, change func(*aggregate.PrivacyConfig)) string {
	t.Helper()
	c := defaultConfig()
	change(&c.Datasets[0].Privacy)
	b, err := yaml.Marshal(struct {
		Datasets []aggregate.DatasetConfig `yaml:"datasets"`
	}{c.Datasets})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// datasetFilesOf keeps the Parquet files of a tree, keyed as datasetFiles
// keys them.
func datasetFilesOf(files map[string]string) map[string]string {
	m := map[string]string{}
	for rel, sum := range files {
		if strings.HasPrefix(rel, "datasets"+string(filepath.Separator)) && strings.HasSuffix(rel, ".parquet") {
			m[strings.TrimPrefix(rel, "datasets"+string(filepath.Separator))] = sum
		}
	}
	return m
}

func TestAStateDirectoryNeedsAFixedKey(t *testing.T) {
	t.Setenv("DEID_PSEUDONYM_KEY", "")
	in := smallSample(t, 5, 200)
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	code, _, stderr := deidExit(fileRun(in, out, state)...)
	if code != 2 || !strings.Contains(stderr, "needs a fixed pseudonym key: set DEID_PSEUDONYM_KEY") {
		t.Fatalf("exit %d, want 2 naming the key's setting:\n%s", code, stderr)
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("the refused run created the state directory")
	}
}

// TestAnOutputIsBoundToItsKeyAndPolicy: a file-mode output, written here
// without a state directory, holds its binding, and not the key.
func TestAnOutputIsBoundToItsKeyAndPolicy(t *testing.T) {
	t.Setenv("DEID_PSEUDONYM_KEY", "out-binding-key-0123456789")
	in := smallSample(t, 6, 500)
	out := filepath.Join(t.TempDir(), "out")
	deid(t, fileRun(in, out, "")...)
	b, err := os.ReadFile(filepath.Join(out, outBindingName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"key_fingerprint"`, `"policy_version"`, `"pipeline.window": "24h0m0s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the output's binding lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "out-binding-key") {
		t.Errorf("the output's binding holds the key:\n%s", b)
	}
}

// TestEventsOfAWindowPublishedByAnEarlierRunAreLate: a second run on the
// same state directory and output, with a new input file whose events fall
// in days the first run published, excludes them as late_event (contract §9):
// none is contributed and left unpublished, the accounting adds up and the
// output verifies.
func TestEventsOfAWindowPublishedByAnEarlierRunAreLate(t *testing.T) {
	t.Setenv("DEID_PSEUDONYM_KEY", "frontier-key-0123456789")
	in := smallSample(t, 8, 4000)
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	deid(t, fileRun(in, out, state)...)
	published := datasetFiles(t, out)

	// The new file: campaign events of the published days, under new ids.
	data, err := os.ReadFile(filepath.Join(in, "events-00.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var added []byte
	n := 0
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if n < 40 && bytes.Contains(line, []byte(`"campaign.metrics"`)) && bytes.HasPrefix(line, []byte(`{"event_id":"`)) {
			added = append(added, bytes.Replace(line, []byte(`{"event_id":"`), []byte(`{"event_id":"again-`), 1)...)
			n++
		}
	}
	writeFile(t, filepath.Join(in, "events-02.ndjson"), string(added))

	stdout := deid(t, fileRun(in, out, state)...)
	excluded, dead := dispositions(t, out)
	var late, other int
	for pos, reason := range excluded {
		if !strings.HasPrefix(pos, "events-02.ndjson[") {
			continue
		}
		if reason == "late_event" {
			late++
		} else {
			other++
		}
	}
	for pos := range dead {
		if strings.HasPrefix(pos, "events-02.ndjson[") {
			other++
		}
	}
	if late == 0 || late+other != n {
		t.Errorf("of the %d events of published days, %d are late and %d have another disposition: some contributed to a window that is never published again\n%s",
			n, late, other, stdout)
	}
	if diff := cmp.Diff(published, datasetFiles(t, out)); diff != "" {
		t.Errorf("the published windows changed (-before +after):\n%s", diff)
	}
	code, vout, verr := deidExit("verify", out, "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName))
	if code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, vout, verr)
	}
}

// TestASecondProcessIsRefusedWhileTheFirstRuns starts two deid processes on
// one state directory and output, the second once the first holds its lock:
// the second exits 2 before touching anything, naming the first; a third on
// the same output with another state directory too; the first finishes and
// its output verifies. A process killed with SIGKILL leaves its lock file,
// which does not block the next run.
func TestASecondProcessIsRefusedWhileTheFirstRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; not with -short")
	}
	bin := deidBinary(t)
	in := smallSample(t, 9, 80_000)
	env := append(os.Environ(), "DEID_PSEUDONYM_KEY=lock-test-key-0123456789")
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")

	first := startDeid(t, bin, env, fileRun(in, out, state)...)
	pid := strconv.Itoa(first.cmd.Process.Pid)
	waitFor(t, 30*time.Second, "the first run to hold its locks", func() bool {
		b, _ := os.ReadFile(filepath.Join(out, outLockName))
		return !first.running() || strings.Contains(string(b), `"pid":`+pid+`,`)
	})
	if !first.running() {
		t.Fatal("the first run ended before the second started")
	}
	second, err := runProcess(bin, env, fileRun(in, out, state)...)
	other := filepath.Join(t.TempDir(), "other-state")
	third, err3 := runProcess(bin, env, fileRun(in, out, other)...)
	for _, r := range []struct {
		name, key string
		out       []byte
		err       error
	}{{"the second", "state_dir", second, err}, {"the third", "out", third, err3}} {
		if code := exitCode(r.err); code != 2 {
			t.Errorf("%s run: exit %d, want 2\n%s", r.name, code, r.out)
		}
		if want := "is locked by pid " + pid + " on host "; !strings.Contains(string(r.out), want) ||
			!strings.Contains(string(r.out), "stop that process or use another "+r.key) {
			t.Errorf("%s run does not name the holder (%q) and the way out:\n%s", r.name, want, r.out)
		}
	}
	if exited, err := first.wait(2 * time.Minute); !exited || err != nil {
		t.Fatalf("the first run: exited %v, %v", exited, err)
	}
	if msg, err := runProcess(bin, env, "verify", out); err != nil {
		t.Errorf("verify after the first run: %v\n%s", err, msg)
	}

	// A stale lock: kill a run, and the next one is not blocked.
	out2, state2 := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	if _, err := killAfter(bin, env, 300*time.Millisecond, fileRun(in, out2, state2)...); err != nil {
		t.Fatal(err)
	}
	if msg, err := runProcess(bin, env, fileRun(in, out2, state2)...); err != nil {
		t.Fatalf("the run after a killed one: %v\n%s", err, msg)
	}
}

// exitCode is a process's exit status from its Wait error.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestARunKilledWhileBindingResumes: a run killed while it wrote the state
// directory's binding leaves its temporary file, and nothing else; the next
// run starts.
func TestARunKilledWhileBindingResumes(t *testing.T) {
	t.Setenv("DEID_PSEUDONYM_KEY", "half-bound-key-0123456789")
	in := smallSample(t, 10, 300)
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(state, stateLockName), "")
	writeFile(t, filepath.Join(state, ".tmp-binding-123"), `{"binding_version":1,"key_fin`)
	deid(t, fileRun(in, out, state)...)
	if _, err := os.Stat(filepath.Join(state, ".tmp-binding-123")); err == nil {
		t.Error("the temporary file is still there")
	}
}

// TestAFileRunRefusesAnOutputThatHoldsARun: published windows are never
// overwritten, so a file-mode run without a state directory refuses an
// output another run wrote and says how to go on.
func TestAFileRunRefusesAnOutputThatHoldsARun(t *testing.T) {
	s := generatedSample(t)
	out := copyTree(t, s.out)
	code, _, stderr := deidExit("run", "--input", s.in, "--settings", filepath.Join(s.in, "settings.ndjson"), "--out", out)
	if code != 2 || !strings.Contains(stderr, "is not empty; published windows are never overwritten — remove it or pass another --out") {
		t.Errorf("exit %d, want 2 naming the non-empty output:\n%s", code, stderr)
	}
}
