package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/sinks/kafkadlq"
)

// deidProcess is `deid` running as a subprocess of the test, its output
// (stdout and stderr) kept for the test's log.
type deidProcess struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
	err    error // the exit, once exited is closed
}

// startDeid starts bin with args and env. At cleanup it is killed if it
// still runs, and its output is logged if the test failed.
func startDeid(t *testing.T, bin string, env []string, args ...string) *deidProcess {
	t.Helper()
	p := &deidProcess{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("deid %v:\n%s", args, p.out.String())
		}
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit;
// exited is false if it still runs then.
func (p *deidProcess) wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.exited:
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// running tells whether the process has not exited yet.
func (p *deidProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// recordsRead is the count of records read that /metrics at addr reports,
// or -1 when it does not answer.
func recordsRead(addr string) float64 {
	m, err := scrape(addr)
	if err != nil {
		return -1
	}
	return m["deid_records_read_total"]
}

// partitionRecords is the sum of the per-partition counts of records read
// (each counted once its partition's position has moved past it) that
// /metrics at addr reports, or -1 when it does not answer.
func partitionRecords(addr string) float64 {
	m, err := scrape(addr)
	if err != nil {
		return -1
	}
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "deid_partition_records_total{") {
			n += v
		}
	}
	return n
}

// ready tells whether /readyz at addr answers 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// checkpointNext reads the next offset each partition's checkpoint under
// state holds, by partition. Checkpoints are gob-encoded; decoding takes
// the fields named here and skips the others.
func checkpointNext(t *testing.T, state string) map[int32]int64 {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(state, "checkpoints", "*", "*.ckpt"))
	next := map[int32]int64{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var cp struct {
			Partition struct{ Partition int32 }
			Next      int64
		}
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&cp); err != nil {
			t.Fatalf("checkpoint %s: %v", p, err)
		}
		next[cp.Partition.Partition] = cp.Next
	}
	return next
}

// TestSigtermStopsAKafkaRunCleanly sends SIGTERM, then SIGINT, to a real
// deid process in the middle of a streaming Kafka run, as an orchestrator
// does (contract §9): each time it stops reading, checkpoints and exits 0
// within shutdown_timeout, with each partition's checkpoint on disk and
// the group's committed offsets equal to the checkpoints' positions. A
// last run resumes from there to the topics' ends, and the outputs are
// those of file mode: byte-identical datasets, every exclusion entry
// exactly once, every dead letter on the topic.
func TestSigtermStopsAKafkaRunCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("signals a real process; not with -short")
	}
	bin := deidBinary(t)
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := gen.DefaultConfig()
		cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 29, 40_000, 2, 120
		s := produceSample(t, c, cfg)
		const shutdownTimeout = 10 * time.Second
		appendFile(t, s.conf, fmt.Sprintf("shutdown_timeout: %s\nkafka:\n  session_timeout: 6s\n", shutdownTimeout))
		env := append(os.Environ(), "DEID_PSEUDONYM_KEY=sigterm-test-key-0123456789")

		want := s.fileModeDatasets(t, bin, env)

		out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
		args := s.args(c, out, state)
		// Without --stop-at-end: a streaming run, until a signal.
		streaming := slices.Clip(args[:len(args)-1])
		var end int64
		for _, n := range kafkatest.EndOffsets(t, c.Brokers, s.events) {
			end += n
		}
		// before is the count of records below the last stop's checkpoints.
		var before int64
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			addr := freeAddr(t)
			p := startDeid(t, bin, env, append(streaming, "--http-addr", addr)...)
			// Processing: ready, and reading on from the last stop (unless
			// that stop came after the last record).
			waitFor(t, 60*time.Second, "the run to read records", func() bool {
				return !p.running() || ready(addr) && (partitionRecords(addr) > 0 || before == end)
			})
			if !p.running() {
				t.Fatalf("the run ended before the %s", sig)
			}
			sent := time.Now()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			exited, err := p.wait(shutdownTimeout + 5*time.Second)
			took := time.Since(sent)
			if !exited {
				t.Fatalf("%s: still running %s later (shutdown_timeout %s)", sig, took.Round(time.Millisecond), shutdownTimeout)
			}
			if err != nil {
				t.Fatalf("%s: %v after %s, want exit 0", sig, err, took.Round(time.Millisecond))
			}
			// The summary counts the records of every run on this state
			// directory (the accounting is checkpointed too); the topic
			// starts at offset 0.
			read := summaryRead(t, p.out.String())
			t.Logf("%s %d records in: exit 0 in %s", sig, read, took.Round(time.Millisecond))
			if took > shutdownTimeout {
				t.Errorf("%s: the run took %s to stop, longer than shutdown_timeout %s", sig, took.Round(time.Millisecond), shutdownTimeout)
			}

			// Each partition checkpointed at the stop — exactly after the
			// last record the run read, not at an earlier periodic
			// checkpoint — and committed its checkpoint's position.
			next := checkpointNext(t, state)
			if len(next) != cfg.Partitions {
				t.Fatalf("%s: checkpoints of partitions %v, want all %d", sig, next, cfg.Partitions)
			}
			var total int64
			for _, n := range next {
				total += n
			}
			if total != read {
				t.Errorf("%s: the checkpoints %v are %d records in, but the run stopped %d records in", sig, next, total, read)
			}
			if total <= before && before < end {
				t.Errorf("%s: the checkpoints %v did not move past the last stop's %d records", sig, next, before)
			}
			before = total
			committed := kafkatest.Committed(t, c.Brokers, s.group, s.events)
			if diff := cmp.Diff(next, committed); diff != "" {
				t.Errorf("%s: the group's committed offsets are not the checkpoints' positions (-checkpoint +committed):\n%s", sig, diff)
			}
		}

		// The rest, to the topics' ends.
		if out, err := runProcess(bin, env, args...); err != nil {
			t.Fatalf("the last run: %v\n%s", err, out)
		}
		if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
			t.Errorf("datasets differ from file mode (-file +kafka):\n%s", diff)
		}
		excluded, _ := dispositions(t, out) // fails on an entry written twice
		if diff := cmp.Diff(s.stats.Expected.Excluded, countValues(excluded)); diff != "" {
			t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
		}
		checkDeadLetters(t, c, s)
	})
}

// summaryRead returns the count of records read that a run's summary
// reports.
func summaryRead(t *testing.T, out string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*records read\s+(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no \"records read\" in the run's summary:\n%s", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// checkDeadLetters checks that every malformed record of the sample is on
// the dead-letter topic. Dead letters are delivered at least once: a
// repeat is allowed (a replay after a stop or a retried write), a gap is
// not.
func checkDeadLetters(t *testing.T, c *kafkatest.Cluster, s kafkaSample) {
	t.Helper()
	letters := map[string]string{}
	for _, m := range readTopic(t, c.Brokers, s.dlq) {
		h := headers(m)
		if h[kafkadlq.HeaderSourceTopic] != s.events {
			t.Errorf("a dead letter from %q, want %q", h[kafkadlq.HeaderSourceTopic], s.events)
		}
		letters[h[kafkadlq.HeaderSourcePartition]+"@"+h[kafkadlq.HeaderSourceOffset]] = h[kafkadlq.HeaderReason]
	}
	if diff := cmp.Diff(s.stats.Expected.DeadLetters, countValues(letters)); diff != "" {
		t.Errorf("dead letters by reason, each source position once (-want +got):\n%s", diff)
	}
}

// cancelOn is a log writer that cancels a run's context once the log says
// what it waits for: a stop signal at a chosen moment, in-process.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	what   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if bytes.Contains(p, []byte(c.what)) {
		c.cancel()
	}
	return len(p), nil
}

// A stop signal in file mode is a graceful stop, as in Kafka mode (contract
// §9): the run stops reading, checkpoints and exits 0, and running the same
// command again resumes from the checkpoints to the datasets and exclusion
// entries of an uninterrupted run.
func TestStopSignalEndsAFileRunCleanly(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 31, 20_000, 2, 100
	stats, err := gen.WriteFiles(in, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEID_PSEUDONYM_KEY", "stop-signal-test-key-0123456789")
	args := func(out, state string) []string {
		a := []string{"run", "--input", in, "--settings", filepath.Join(in, gen.SettingsFileName), "--out", out}
		if state != "" {
			a = append(a, "--state-dir", state)
		}
		return a
	}
	want := filepath.Join(t.TempDir(), "want")
	deid(t, args(want, "")...)

	for _, withState := range []bool{true, false} {
		dir := t.TempDir()
		out, state := filepath.Join(dir, "out"), ""
		if withState {
			state = filepath.Join(dir, "state")
		}
		// The signal arrives as the run starts reading.
		ctx, cancel := context.WithCancel(context.Background())
		logs := &cancelOn{what: "consent loaded", cancel: cancel}
		var stdout bytes.Buffer
		code := runCtx(ctx, args(out, state), &stdout, logs)
		cancel()
		if code != 0 {
			t.Fatalf("state %v: a stopped file run exits %d, want 0\n%s\n%s", withState, code, stdout.String(), logs.buf.String())
		}
		if !strings.Contains(logs.buf.String(), "stopped by a signal before the end of the input") {
			t.Errorf("state %v: the log does not say the run was stopped:\n%s", withState, logs.buf.String())
		}
		if !withState {
			continue
		}
		if ckpts, _ := filepath.Glob(filepath.Join(state, "checkpoints", "*", "*.ckpt")); len(ckpts) != cfg.Partitions {
			t.Fatalf("checkpoints %v after the stop, want one per partition (%d)", ckpts, cfg.Partitions)
		}
		deid(t, args(out, state)...)
		if diff := cmp.Diff(datasetFiles(t, want), datasetFiles(t, out)); diff != "" {
			t.Errorf("datasets after the stop and a resume differ from an uninterrupted run (-want +got):\n%s", diff)
		}
		excluded, _ := dispositions(t, out) // fails on an entry written twice
		if diff := cmp.Diff(stats.Expected.Excluded, countValues(excluded)); diff != "" {
			t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
		}
	}
}
