package kafkatest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// EnvState is the variable of scripts/kafka-local.sh that selects a
// broker's state directory (pid, port, logs, data).
const EnvState = "DEID_KAFKA_STATE"

// dedicatedDir is where Dedicated keeps its brokers' state directories,
// under the repository's .cache.
const dedicatedDir = "kafka-dedicated"

// localBroker is a real broker of one test's own, run by
// scripts/kafka-local.sh on a state directory of its own.
type localBroker struct {
	script string // scripts/kafka-local.sh
	state  string // its state directory
	port   int    // its first port to try
}

// run runs the script with a subcommand on the broker's state directory;
// keep restarts the broker on the state it had.
func (b *localBroker) run(cmd string, keep bool) ([]byte, error) {
	c := exec.Command("bash", b.script, cmd)
	k := ""
	if keep {
		k = "1"
	}
	c.Env = append(os.Environ(),
		EnvState+"="+b.state,
		"DEID_KAFKA_PORT="+strconv.Itoa(b.port),
		"DEID_KAFKA_KEEP="+k,
		// A second JVM on a small machine: a small heap is plenty for a
		// test's topics.
		"DEID_KAFKA_HEAP=256m",
	)
	return c.CombinedOutput()
}

// Dedicated starts a real Apache Kafka broker for the test alone, through
// scripts/kafka-local.sh with a state directory of its own under
// .cache/kafka-dedicated, on the next free port from a random one in
// 19200–19998 (away from the shared broker's 19092). Unlike the shared
// broker of Real, which every test package uses at once, it can be taken
// away and brought back: Stop and Start stop the broker process and start
// it again on the same port with its data (topics, records, committed
// offsets). It is stopped and its state directory removed at cleanup (kept
// when the test failed, for its logs, until the next Dedicated).
//
// It runs when the real-broker suite does — DEID_KAFKA_BROKERS or
// DEID_REQUIRE_KAFKA set — and is skipped otherwise; once it runs, a
// broker that does not start fails the test. Starting a second JVM takes a
// few seconds.
func Dedicated(t testing.TB) *Cluster {
	t.Helper()
	if os.Getenv(EnvBrokers) == "" && !required() {
		t.Skipf("kafkatest: no real Kafka broker suite (neither %s nor %s is set); run it with: bash scripts/test.sh", EnvBrokers, EnvRequire)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	dir := filepath.Join(root, ".cache", dedicatedDir)
	sweepOrphans(root, dir)
	var r [8]byte
	rand.Read(r[:])
	b := &localBroker{
		script: filepath.Join(root, "scripts", "kafka-local.sh"),
		state:  filepath.Join(dir, fmt.Sprintf("%x", r[:4])),
		port:   19200 + 2*int(binary.BigEndian.Uint32(r[4:])%400),
	}
	// The owner file (the test process's pid) lets a later Dedicated stop
	// this broker if the process dies without its cleanup (a go test
	// timeout, a kill).
	owner := b.state + ".owner"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	if err := os.WriteFile(owner, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	// Registered before the start: one that fails half-way is cleaned up too.
	t.Cleanup(func() {
		if out, err := b.run("stop", false); err != nil {
			t.Errorf("kafkatest: stopping the dedicated broker: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("kafkatest: the dedicated broker's logs are in %s", filepath.Join(b.state, "logs"))
			return
		}
		os.RemoveAll(b.state)
		os.Remove(owner)
	})
	if out, err := b.run("start", false); err != nil {
		t.Fatalf("kafkatest: starting a dedicated broker: %v\n%s", err, out)
	}
	port, err := os.ReadFile(filepath.Join(b.state, "port"))
	if err != nil {
		t.Fatalf("kafkatest: the dedicated broker's port: %v", err)
	}
	return &Cluster{Kind: "real", Brokers: []string{"127.0.0.1:" + strings.TrimSpace(string(port))}, local: b}
}

// required tells whether DEID_REQUIRE_KAFKA asks for the real broker.
func required() bool {
	req := os.Getenv(EnvRequire)
	return req != "" && req != "0"
}

// stop stops the dedicated broker and waits until its process has exited.
func (b *localBroker) stop(t testing.TB) {
	t.Helper()
	if out, err := b.run("stop", false); err != nil {
		t.Fatalf("kafkatest: stopping the dedicated broker: %v\n%s", err, out)
	}
}

// start starts the dedicated broker again on its port and data, and waits
// until it serves.
func (b *localBroker) start(t testing.TB) {
	t.Helper()
	if out, err := b.run("start", true); err != nil {
		t.Fatalf("kafkatest: restarting the dedicated broker: %v\n%s", err, out)
	}
}

// repoRoot finds the repository from the working directory (a package's
// directory under go test): the first parent holding the script.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "kafka-local.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/kafka-local.sh not found above the working directory")
		}
		dir = parent
	}
}

// sweepOrphans stops the dedicated brokers under dir whose test process
// has died without its cleanup, and removes their state (so a failed
// test's logs stay until the next Dedicated). Brokers of running tests
// are left alone.
func sweepOrphans(root, dir string) {
	owners, _ := filepath.Glob(filepath.Join(dir, "*.owner"))
	for _, owner := range owners {
		b, err := os.ReadFile(owner)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || processExists(pid) {
			continue
		}
		lb := &localBroker{script: filepath.Join(root, "scripts", "kafka-local.sh"), state: strings.TrimSuffix(owner, ".owner")}
		if _, err := lb.run("stop", false); err == nil {
			os.RemoveAll(lb.state)
			os.Remove(owner)
		}
	}
}

// processExists tells whether a process with this pid is alive.
func processExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}
