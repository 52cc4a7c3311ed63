package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/sinks/parquet"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape reads /metrics into "name{labels}" → value.
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// waitFor polls cond every 100ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStreamingRun runs deid as the streaming job it is in production — no
// end of input — and checks, while it runs: /readyz turns ready, a quiet
// topic still gets every window published (idle partitions follow
// processing time), /metrics agrees with the manifests and the generator's
// accounting; then a stop (SIGTERM's context) ends it cleanly with exit 0,
// and the datasets equal those of file mode.
func TestStreamingRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a streaming end-to-end run; not with -short")
	}
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Setenv("DEID_PSEUDONYM_KEY", "stream-test-key-0123456789")
		cfg := gen.DefaultConfig()
		cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 9, 20_000, 2, 120
		s := produceSample(t, c, cfg)
		fileOut := filepath.Join(t.TempDir(), "file-out")
		deid(t, "run", "--config", s.conf, "--input", s.files, "--settings", filepath.Join(s.files, gen.SettingsFileName), "--out", fileOut)
		manifests, err := parquet.ListManifests(fileOut)
		if err != nil || len(manifests) == 0 {
			t.Fatalf("file mode published nothing: %v", err)
		}

		out := filepath.Join(t.TempDir(), "out")
		addr := freeAddr(t)
		args := s.args(c, out, filepath.Join(t.TempDir(), "state"))
		args = append(args[:len(args)-1], "--http-addr", addr) // no --stop-at-end: a streaming run
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var stdout, stderr bytes.Buffer
		exit := make(chan int, 1)
		go func() { exit <- runCtx(ctx, args, &stdout, &stderr) }()

		waitFor(t, 60*time.Second, "/readyz", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		var m map[string]float64
		waitFor(t, 90*time.Second, fmt.Sprintf("%d windows published", len(manifests)), func() bool {
			m, err = scrape(addr)
			return err == nil && m["deid_windows_published_total"] == float64(len(manifests))
		})
		if got := m["deid_records_read_total"]; got != float64(s.stats.Events) {
			t.Errorf("/metrics says %v records read, the sample has %d", got, s.stats.Events)
		}
		for reason, n := range s.stats.Expected.Excluded {
			if got := m[fmt.Sprintf("deid_records_total{disposition=\"excluded\",reason=%q}", reason)]; got != float64(n) {
				t.Errorf("/metrics: %s = %v, want %d", reason, got, n)
			}
		}
		var contributed, read int64
		kmanifests, _ := parquet.ListManifests(out)
		for _, mp := range kmanifests {
			man, err := parquet.ReadManifest(mp)
			if err != nil {
				t.Fatal(err)
			}
			contributed += recordOf(t, out, man).Accounting.Contributed
		}
		if got := m[`deid_records_total{disposition="contributed",reason=""}`]; got != float64(contributed) {
			t.Errorf("/metrics says %v contributed, the manifests %d", got, contributed)
		}
		for k, v := range m {
			if strings.HasPrefix(k, "deid_partition_records_total{") {
				read += int64(v)
			}
		}
		if read != s.stats.Events {
			t.Errorf("per-partition records add up to %d, want %d", read, s.stats.Events)
		}

		stop() // what SIGTERM does
		select {
		case code := <-exit:
			if code != 0 {
				t.Fatalf("stop: exit %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the run did not stop within 30s of its stop signal")
		}
		if diff := cmp.Diff(datasetFiles(t, fileOut), datasetFiles(t, out)); diff != "" {
			t.Errorf("streaming datasets differ from file mode (-file +kafka):\n%s", diff)
		}
	})
}

// TestKafkaKillAnywhereThenResume is SIGKILL at ≥ 10 points of a Kafka-mode
// run, each followed by a restart from the checkpoints: the datasets are
// byte-identical to file mode's, and the exclusion log holds every excluded
// record exactly once (contract §9).
func TestKafkaKillAnywhereThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a real process; not with -short")
	}
	bin := deidBinary(t)
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		cfg := gen.DefaultConfig()
		cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 13, 50_000, 2, 120
		s := produceSample(t, c, cfg)
		// A short session, so that a restarted member does not wait long
		// for the killed one to leave the group.
		session := "6s"
		if c.IsFake() {
			session = "1s"
		}
		appendFile(t, s.conf, fmt.Sprintf("kafka:\n  session_timeout: %s\n", session))
		env := append(os.Environ(), "DEID_PSEUDONYM_KEY=kafka-crash-key-0123456789")
		want := s.fileModeDatasets(t, bin, env)

		ref := filepath.Join(t.TempDir(), "ref")
		start := time.Now()
		if out, err := runProcess(bin, env, s.args(c, ref, filepath.Join(t.TempDir(), "ref-state"))...); err != nil {
			t.Fatalf("uninterrupted Kafka run: %v\n%s", err, out)
		}
		full := time.Since(start)
		if diff := cmp.Diff(want, datasetFiles(t, ref)); diff != "" {
			t.Fatalf("uninterrupted Kafka run differs from file mode:\n%s", diff)
		}
		points := 10
		if c.IsFake() {
			points = 3
		}
		for i := 0; i < points; i++ {
			delay := full * time.Duration(i+1) / time.Duration(points+1)
			t.Run(fmt.Sprintf("kill at %s", delay.Round(time.Millisecond)), func(t *testing.T) {
				group := s
				group.group = fmt.Sprintf("%s-%d", s.group, i)
				out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
				if _, err := killAfter(bin, env, delay, group.args(c, out, state)...); err != nil {
					t.Fatal(err)
				}
				if out, err := runProcess(bin, env, group.args(c, out, state)...); err != nil {
					t.Fatalf("restart: %v\n%s", err, out)
				}
				if diff := cmp.Diff(want, datasetFiles(t, out)); diff != "" {
					t.Errorf("datasets differ from the uninterrupted run (-want +got):\n%s", diff)
				}
				excluded, _ := dispositions(t, out)
				byReason := countValues(excluded)
				if diff := cmp.Diff(s.stats.Expected.Excluded, byReason); diff != "" {
					t.Errorf("exclusion entries by reason (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}
