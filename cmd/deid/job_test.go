package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/internal/s3test"
)

// jobFixture is a generated sample on the real broker (a topic of six
// partitions) and the real S3 server, with the file-mode datasets of the
// same sample, which every job of several instances (contract §13) over it
// must equal byte for byte.
type jobFixture struct {
	bin  string
	env  []string
	c    *kafkatest.Cluster
	srv  *s3test.Server
	s    kafkaSample
	want map[string]string
	// base is the sample's config with the S3 server's storage settings.
	base   string
	bucket string
}

func newJobFixture(t *testing.T, events int) *jobFixture {
	t.Helper()
	f := &jobFixture{bin: deidBinary(t), c: kafkatest.Real(t), srv: s3test.Require(t)}
	f.srv.Setenv(t)
	t.Setenv("DEID_PSEUDONYM_KEY", "job-test-key-0123456789abcdef")
	f.env = os.Environ()
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 17, events, 6, 200
	f.s = produceSample(t, f.c, cfg)
	f.want = f.s.fileModeDatasets(t, f.bin, f.env)
	b, err := os.ReadFile(f.s.conf)
	if err != nil {
		t.Fatal(err)
	}
	// A killed publisher's lease is taken over this long after its
	// last heartbeat.
	f.base = string(b) + s3Conf(f.srv) + "  lease_ttl: 6s\n"
	f.bucket = f.srv.Bucket(t)
	return f
}

// jobRun is one job over the fixture's input: its own consumer group,
// partials topic, anchors topic, output and state.
type jobRun struct {
	f                *jobFixture
	name             string
	group, anchors   string
	conf, out, state string
	lastStart        time.Time
}

// sessionTimeout is the job's kafka.session_timeout: a killed instance's
// partitions go to the others this long after its last heartbeat.
const sessionTimeout = 3 * time.Second

func (f *jobFixture) run(t *testing.T, name, extra string) *jobRun {
	t.Helper()
	r := &jobRun{f: f, name: name, group: kafkatest.Name(t, "job"), anchors: kafkatest.Name(t, "anchors")}
	kafkatest.CreateTopic(t, f.c.Brokers, r.group+".partials", 1, false)
	kafkatest.CreateTopic(t, f.c.Brokers, r.anchors, 1, false)
	r.conf = filepath.Join(t.TempDir(), "job.yaml")
	writeFile(t, r.conf, f.base+"anchors:\n  topic: "+r.anchors+"\n"+
		fmt.Sprintf("kafka:\n  scale_out: true\n  session_timeout: %s\n  rebalance_timeout: 10s\n%s", sessionTimeout, extra))
	r.out, r.state = "s3://"+f.bucket+"/"+name+"/out", "s3://"+f.bucket+"/"+name+"/state"
	return r
}

func (r *jobRun) args() []string {
	return []string{"run", "--config", r.conf, "--brokers", joinComma(r.f.c.Brokers), "--topics", r.f.s.events,
		"--group", r.group, "--out", r.out, "--state-dir", r.state, "--stop-at-end"}
}

// instance is one deid process of the job.
type instance struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan error
}

func (i *instance) Write(p []byte) (int, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.log.Write(p)
}

func (i *instance) output() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.log.String()
}

// startGap spaces the starts of a job's instances: versitygw's file-system
// backend can answer 409 ExistingObjectIsDirectory, or refuse a fresh key
// as existing, when several writers create a new prefix at the same
// instant (each instance's probe at its first start). AWS S3 has no
// directories; with this server, instances start a moment apart, as an
// orchestrator's rollout does.
const startGap = 300 * time.Millisecond

// start starts an instance of the job.
func (r *jobRun) start(t *testing.T, name string) *instance {
	t.Helper()
	if wait := time.Until(r.lastStart.Add(startGap)); wait > 0 {
		time.Sleep(wait)
	}
	r.lastStart = time.Now()
	i := &instance{name: name, done: make(chan error, 1)}
	i.cmd = exec.Command(r.f.bin, r.args()...)
	i.cmd.Env = r.f.env
	i.cmd.Stdout, i.cmd.Stderr = i, i
	if err := i.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { i.done <- i.cmd.Wait() }()
	t.Cleanup(i.kill)
	return i
}

// startN starts n instances of the job, named i0, i1…
func (r *jobRun) startN(t *testing.T, n int) []*instance {
	t.Helper()
	insts := make([]*instance, n)
	for k := range insts {
		insts[k] = r.start(t, fmt.Sprintf("i%d", k))
	}
	return insts
}

// wait waits for the instance to exit 0.
func (i *instance) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-i.done:
		i.done <- err
		if err != nil {
			t.Fatalf("instance %s: %v\n%s", i.name, err, lastLines(i.output(), 40))
		}
	case <-time.After(within):
		i.cmd.Process.Signal(syscall.SIGQUIT)
		err := <-i.done
		i.done <- err
		t.Fatalf("instance %s did not finish within %s\n%s", i.name, within, lastLines(i.output(), 80))
	}
}

// kill sends SIGKILL and waits for the process to end.
func (i *instance) kill() {
	i.cmd.Process.Signal(syscall.SIGKILL)
	err := <-i.done
	i.done <- err
}

// waitFor polls the instance's log until it holds s.
func (i *instance) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(i.output(), s) {
		select {
		case err := <-i.done:
			i.done <- err
			t.Fatalf("instance %s ended (%v) before logging %q\n%s", i.name, err, s, lastLines(i.output(), 40))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s did not log %q within %s\n%s", i.name, s, within, lastLines(i.output(), 40))
		}
	}
}

// check verifies the job's output on the server against its anchors, and
// compares its datasets with file mode and its dispositions with the
// generator's count: every exclusion exactly once.
func (r *jobRun) check(t *testing.T) {
	t.Helper()
	var dump bytes.Buffer
	for _, m := range readTopic(t, r.f.c.Brokers, r.anchors) {
		dump.Write(m.Value)
		dump.WriteByte('\n')
	}
	anchors := filepath.Join(t.TempDir(), "anchors.ndjson")
	writeFile(t, anchors, dump.String())
	dir := verifiedS3Copy(t, r.f.srv, r.conf, r.out, anchors)
	if diff := cmp.Diff(r.f.want, datasetFiles(t, dir)); diff != "" {
		t.Errorf("the job's datasets differ from file mode (-file +job):\n%s", diff)
	}
	excluded, _ := dispositions(t, dir)
	if diff := cmp.Diff(r.f.s.stats.Expected.Excluded, countValues(excluded)); diff != "" {
		t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
	}
}

// waitAll waits for every instance to exit 0.
func waitAll(t *testing.T, insts ...*instance) {
	t.Helper()
	for _, i := range insts {
		i.wait(t, 3*time.Minute)
	}
}

// TestAJobOfThreeInstancesEqualsFileMode: three deid processes share one
// job on a topic of six partitions; with --stop-at-end each exits 0 once
// the whole job is done, and the output is file mode's, byte for byte.
func TestAJobOfThreeInstancesEqualsFileMode(t *testing.T) {
	if testing.Short() {
		t.Skip("three real processes on the real broker and S3 server; not with -short")
	}
	f := newJobFixture(t, 120_000)
	r := f.run(t, "three", "")
	insts := r.startN(t, 3)
	waitAll(t, insts...)
	for _, i := range insts {
		if !strings.Contains(i.output(), "one instance of a job") {
			t.Errorf("instance %s printed no summary:\n%s", i.name, lastLines(i.output(), 20))
		}
	}
	r.check(t)

	// The same job on one instance: the same bytes, and the CPU time of
	// the two side by side (a figure for docs/performance.md, not a
	// check: the machine is noisy).
	one := f.run(t, "one", "")
	alone := one.start(t, "alone")
	waitAll(t, alone)
	one.check(t)
	t.Logf("CPU seconds for %d events: 3 instances %.2f, 1 instance %.2f (ratio %.2f)", f.s.stats.Events,
		cpuSeconds(insts...), cpuSeconds(alone), cpuSeconds(insts...)/cpuSeconds(alone))
}

// cpuSeconds is the user and system time of the instances, which have ended.
func cpuSeconds(insts ...*instance) float64 {
	var d time.Duration
	for _, i := range insts {
		d += i.cmd.ProcessState.UserTime() + i.cmd.ProcessState.SystemTime()
	}
	return d.Seconds()
}

// TestAJobSurvivesTheLossOfAnInstance kills one of three instances with
// SIGKILL at five points of a job, one run each: the others take its
// partitions (or the publisher's partials) after the session timeout, and
// the output is file mode's.
func TestAJobSurvivesTheLossOfAnInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes of a job; not with -short")
	}
	f := newJobFixture(t, 120_000)
	const assigned, publishing = "generation assigned", "publishing: holding the publisher lease"
	points := []struct {
		name  string
		after string // the victim's log line
		delay time.Duration
		// publisher: the victim is whichever instance publishes.
		publisher bool
	}{
		{"at-assignment", assigned, 0, false},
		{"mid-window", assigned, 40 * time.Millisecond, false},
		{"later-mid-window", assigned, 100 * time.Millisecond, false},
		{"read-to-end", readToTheEnd, 0, false},
		{"publishing", publishing, 0, true},
		{"mid-publication", publishing, 300 * time.Millisecond, true},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			r := f.run(t, "kill-"+p.name, "")
			insts := r.startN(t, 3)
			// The last started: its first assignment is the one that
			// shares the partitions among all three, so the points after
			// it fall where they say (the first started may have read much
			// of the input before the test could watch it).
			victim := insts[len(insts)-1]
			if p.publisher {
				victim = firstToLog(t, p.after, time.Minute, insts...)
			} else {
				victim.waitFor(t, p.after, time.Minute)
			}
			time.Sleep(p.delay)
			victim.kill()
			if p.after == assigned && strings.Contains(victim.output(), readToTheEnd) {
				// The input is small enough to be read in well under a
				// second: on a busy machine a point after the assignment
				// can come once the victim has read its partitions.
				t.Logf("%s: the victim had read its partitions to the end before it was killed", p.name)
			}
			var rest []*instance
			for _, i := range insts {
				if i != victim {
					rest = append(rest, i)
				}
			}
			waitAll(t, rest...)
			r.check(t)
		})
	}
}

// firstToLog waits until one of insts logs s and returns it.
func firstToLog(t *testing.T, s string, within time.Duration, insts ...*instance) *instance {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, i := range insts {
			if strings.Contains(i.output(), s) {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no instance logged %q within %s", s, within)
	return nil
}

// TestAPausedInstanceIsFenced stops one instance with SIGSTOP past the
// session timeout: the others take its partitions and finish the job;
// continued, it is fenced — it drops its partitions, writes nothing the
// output references, and exits 0 — and the output is file mode's.
//
// The instance is paused as soon as it holds partitions, before the others
// start, so that it still has records to read and a checkpoint to write
// when it goes on: it reads the whole input in well under a second. A run
// where the pause still came after it had read everything cannot show the
// fence, and is made again (at most three runs).
func TestAPausedInstanceIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses a real process of a job; not with -short")
	}
	f := newJobFixture(t, 120_000)
	for attempt := 1; ; attempt++ {
		r := f.run(t, fmt.Sprintf("paused-%d", attempt), "")
		paused := r.start(t, "i0")
		paused.waitFor(t, "generation assigned", time.Minute)
		paused.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(100 * time.Millisecond) // what it wrote before the stop reaches its log
		if strings.Contains(paused.output(), readToTheEnd) {
			paused.kill()
			if attempt == 3 {
				t.Fatalf("in %d runs the instance had read all its partitions before it was paused", attempt)
			}
			t.Logf("run %d: the instance had read all its partitions before it was paused; again", attempt)
			continue
		}
		others := []*instance{r.start(t, "i1"), r.start(t, "i2")}
		waitAll(t, others...)
		paused.cmd.Process.Signal(syscall.SIGCONT)
		paused.wait(t, 3*time.Minute)
		if !strings.Contains(paused.output(), "partition fenced") {
			t.Errorf("the paused instance was not fenced:\n%s", lastLines(paused.output(), 40))
		}
		r.check(t)
		return
	}
}

// readToTheEnd is what an instance of a job logs once its partitions are
// read to their end.
const readToTheEnd = "partitions read to their end here"

// TestAJobScalesAndRestarts grows a job from one instance to three and
// back to one during a run, then restarts all three one after the other:
// the output is file mode's each time.
func TestAJobScalesAndRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops real processes of a job; not with -short")
	}
	f := newJobFixture(t, 120_000)
	t.Run("1-3-1", func(t *testing.T) {
		r := f.run(t, "scale", "")
		first := r.start(t, "i0")
		first.waitFor(t, "generation assigned", time.Minute)
		time.Sleep(300 * time.Millisecond)
		more := []*instance{r.start(t, "i1"), r.start(t, "i2")}
		for _, i := range more {
			i.waitFor(t, "generation assigned", time.Minute)
		}
		time.Sleep(300 * time.Millisecond)
		for _, i := range more {
			i.cmd.Process.Signal(syscall.SIGTERM)
		}
		waitAll(t, append(more, first)...)
		r.check(t)
	})
	t.Run("rolling-restart", func(t *testing.T) {
		r := f.run(t, "rolling", "")
		insts := []*instance{r.start(t, "i0"), r.start(t, "i1"), r.start(t, "i2")}
		for n, i := range insts {
			i.waitFor(t, "generation assigned", time.Minute)
			time.Sleep(200 * time.Millisecond)
			i.cmd.Process.Signal(syscall.SIGTERM)
			i.wait(t, time.Minute)
			insts[n] = r.start(t, i.name+"'")
		}
		waitAll(t, insts...)
		r.check(t)
	})
}

// TestTwoPublishersCommitEachWindowOnce forces two publishers onto one
// job (each instance its own publisher group, so each is given the
// partials topic): the lease and the manifest's conditional create let
// exactly one commit each window.
func TestTwoPublishersCommitEachWindowOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("two real processes publishing one job; not with -short")
	}
	f := newJobFixture(t, 30_000)
	r := f.run(t, "two-publishers", "")
	var insts []*instance
	for n := range 2 {
		conf := filepath.Join(t.TempDir(), "publisher.yaml")
		b, err := os.ReadFile(r.conf)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, conf, strings.Replace(string(b), "  scale_out: true\n",
			fmt.Sprintf("  scale_out: true\n  publisher_group: %s.publish%d\n", r.group, n), 1))
		i := &instance{name: fmt.Sprintf("p%d", n), done: make(chan error, 1)}
		args := r.args()
		args[2] = conf
		i.cmd = exec.Command(f.bin, args...)
		i.cmd.Env = f.env
		i.cmd.Stdout, i.cmd.Stderr = i, i
		if err := i.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { i.done <- i.cmd.Wait() }()
		t.Cleanup(i.kill)
		insts = append(insts, i)
	}
	waitAll(t, insts...)
	for _, i := range insts {
		// Each is given the partials topic by its own group: it publishes,
		// or waits for the lease the other holds.
		if !strings.Contains(i.output(), "publishing: holding the publisher lease") && !strings.Contains(i.output(), "waiting for the publisher lease") {
			t.Errorf("instance %s was never stage 2: the test did not force two publishers\n%s", i.name, lastLines(i.output(), 30))
		}
	}
	r.check(t)
	st := openTestStore(t, f.srv, r.out)
	keys := storeObjects(t, st)
	manifests := 0
	for k := range keys {
		if strings.HasSuffix(k, "_manifest.json") {
			manifests++
		}
	}
	if manifests != len(f.want) {
		t.Errorf("%d manifests for %d data files: want one commit per window", manifests, len(f.want))
	}
}
