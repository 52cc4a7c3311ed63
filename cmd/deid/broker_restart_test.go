package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
)

// TestBrokerRestartMidRun takes the real broker away in the middle of a
// Kafka-mode run and brings it back on the same port with its data, as an
// operator's broker restart does: the run rides out the outage (readers,
// group membership, offset commits, dead-letter writes and the settings
// follower all retry) and completes, and its outputs are those of file
// mode on the same input — byte-identical datasets, every exclusion entry
// exactly once, every dead letter on the topic — with the group's offsets
// committed to the topics' ends. The broker is a dedicated one: the shared
// broker serves every test package at once.
func TestBrokerRestartMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a real broker under a real process; not with -short")
	}
	begin := time.Now()
	c := kafkatest.Dedicated(t)
	bin := deidBinary(t)
	t.Logf("dedicated broker up and deid built in %s", time.Since(begin).Round(time.Millisecond))
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 23, 60_000, 2, 120
	s := produceSample(t, c, cfg)
	// After a broker restart kafka-go joins the group as a new member; the
	// coordinator waits for the old one's session to expire first, so a
	// short session keeps the test short.
	appendFile(t, s.conf, "kafka:\n  session_timeout: 6s\n")
	env := append(os.Environ(), "DEID_PSEUDONYM_KEY=broker-restart-key-0123456789")

	want := s.fileModeDatasets(t, bin, env)
	t.Logf("sample produced and file mode done in %s", time.Since(begin).Round(time.Millisecond))

	// The Kafka run, to the topics' ends, watched through /metrics.
	out, addr := filepath.Join(t.TempDir(), "out"), freeAddr(t)
	start := time.Now()
	p := startDeid(t, bin, env, append(s.args(c, out, filepath.Join(t.TempDir(), "state")), "--http-addr", addr)...)
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }

	// Mid-run: some records read, not all of them. A graceful broker stop
	// takes a second or two, in which the run could read everything; so
	// the run is frozen (SIGSTOP) while the broker stops, and finds it gone
	// when it continues.
	deadline := time.Now().Add(60 * time.Second)
	for p.running() && recordsRead(addr) < float64(cfg.Events)/10 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for a tenth of the records to be read")
		}
		time.Sleep(10 * time.Millisecond) // a run reads some 100k records a second
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker stopped after %s", since())
	// Down for longer than the group's session (6s), so the generation ends
	// and the workers checkpoint while the broker is away — flushing dead
	// letters to a broker that is not there, which must be retried within
	// kafka.retry_budget, not fail the run — and then for the broker's
	// start-up. What the run has read by then, it read before the outage.
	time.Sleep(10 * time.Second)
	if !p.running() {
		t.Fatalf("the run ended while the broker was down: %v", p.err)
	}
	before := recordsRead(addr)
	t.Logf("%v of %d records read before the outage", before, cfg.Events)
	if before >= float64(cfg.Events) {
		t.Fatalf("the run had read all %d records when the broker went down: nothing was tested", cfg.Events)
	}
	c.Start(t)
	t.Logf("broker back after %s", since())

	exited, err := p.wait(90 * time.Second)
	if !exited {
		t.Fatal("the run did not end within 90s of the broker's return")
	}
	if err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	t.Logf("run done after %s", since())
	if log := p.out.String(); !strings.Contains(log, "failed; retrying") {
		t.Error("the run's log shows no retry: it never noticed the outage")
	}

	if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
		t.Errorf("datasets differ from file mode (-file +kafka):\n%s", diff)
	}
	excluded, _ := dispositions(t, out) // fails on an entry written twice
	if diff := cmp.Diff(s.stats.Expected.Excluded, countValues(excluded)); diff != "" {
		t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
	}
	checkDeadLetters(t, c, s)
	if diff := cmp.Diff(kafkatest.EndOffsets(t, c.Brokers, s.events), kafkatest.Committed(t, c.Brokers, s.group, s.events)); diff != "" {
		t.Errorf("committed offsets are not the topics' ends (-end +committed):\n%s", diff)
	}
}
