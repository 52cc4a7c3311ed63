package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
)

const goldenCase = "../../testdata/golden/campaigns"

// settingsWith writes the golden case's settings with extra lines
// appended, and returns the file's path.
func settingsWith(t *testing.T, extra ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenCase, "settings.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range extra {
		b = append(b, l+"\n"...)
	}
	p := filepath.Join(t.TempDir(), "settings.ndjson")
	must(t, os.WriteFile(p, b, 0o644))
	return p
}

// reasonsOf counts the record-level exclusion reasons of workspace ws.
func reasonsOf(t *testing.T, out, ws string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, e := range exclusionEntries(t, out) {
		if e.Cell == nil && e.WorkspaceID == ws {
			got[e.Reason.String()]++
		}
	}
	return got
}

// TestUnreadableConsentFailsClosedEndToEnd runs file mode on settings whose
// last record for ws01 says "yes" instead of a boolean.
func TestUnreadableConsentFailsClosedEndToEnd(t *testing.T) {
	settings := settingsWith(t, `{"workspace_id":"ws01","ai_training_opt_out":"yes","deleted":false,"updated_at":"2026-10-09T00:00:00Z","updated_by_role":"admin"}`)
	in := filepath.Join(goldenCase, "events.ndjson")
	out := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--input", in, "--settings", settings, "--out", out)
	// Its duplicate and its message fail earlier gates (contract §3.7).
	want := map[string]int{"consent_unreadable": 5, "duplicate": 1, "message_content": 1}
	if diff := cmp.Diff(want, reasonsOf(t, out, "ws01")); diff != "" {
		t.Errorf("ws01's exclusions (-want +got):\n%s", diff)
	}
	if code, stdout, _ := deidExit("verify", out, "--input", in, "--settings", settings); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, stdout)
	}
	report := deid(t, "exclusions", out, "--workspace", "ws01", "--input", in, "--settings", settings)
	for _, want := range []string{"line 21", "unreadable (ai_training_opt_out is a string, not a boolean)", "consent_unreadable 5", "No. It is excluded since its unreadable settings record (line 21)"} {
		if !strings.Contains(report, want) {
			t.Errorf("deid exclusions --workspace ws01 lacks %q:\n%s", want, report)
		}
	}
}

func TestAnUnattributableSettingsRecord(t *testing.T) {
	in := filepath.Join(goldenCase, "events.ndjson")
	settings := settingsWith(t, `{"workspace_id":17,"ai_training_opt_out":true,"updated_by_role":"owner"}`)
	t.Run("stops a file-mode run with exit 2, naming the line and the fix", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := deidExit("run", "--input", in, "--settings", settings, "--out", out)
		if code != 2 {
			t.Fatalf("exit %d, want 2\n%s", code, stderr)
		}
		for _, want := range []string{settings + ":21", "workspace_id is a number", "names no workspace", "consent.unattributable: skip"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
	})
	t.Run("with consent.unattributable: skip the run goes on and logs it", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "deid.yaml")
		must(t, os.WriteFile(cfg, []byte("consent:\n  unattributable: skip\n"), 0o644))
		out := filepath.Join(dir, "out")
		deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", out)
		var skipped []string
		for _, e := range exclusionEntries(t, out) {
			if e.Reason == pipeline.ReasonConsentUnattributable {
				skipped = append(skipped, e.Pos.String())
			}
		}
		if len(skipped) != 1 || skipped[0] != "settings.ndjson[0]@21" {
			t.Errorf("consent_unattributable entries = %v, want settings.ndjson[0]@21", skipped)
		}
		code, stdout, _ := deidExit("verify", out, "--input", in, "--settings", settings, "--config", cfg)
		if code != 0 || !strings.Contains(stdout, "naming no workspace (lines 21) is logged as skipped") {
			t.Errorf("verify: exit %d, want 0 and line 21 found logged:\n%s", code, stdout)
		}
		code, stdout, _ = deidExit("verify", out, "--input", in, "--settings", filepath.Join(goldenCase, "settings.ndjson"), "--config", cfg)
		if code != 1 || !strings.Contains(stdout, "logs settings line 21 as unattributable, but that line names a workspace or is readable") {
			t.Errorf("verify with other settings: exit %d, want 1 naming line 21:\n%s", code, stdout)
		}
	})
	t.Run("verify names settings the run cannot have read", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		deid(t, "run", "--input", in, "--settings", filepath.Join(goldenCase, "settings.ndjson"), "--out", out)
		code, stdout, _ := deidExit("verify", out, "--input", in, "--settings", settings)
		if code != 1 || !strings.Contains(stdout, "settings line 21 is unreadable and names no workspace, but the settings chain does not log it") {
			t.Errorf("verify: exit %d, want 1 naming line 21:\n%s", code, stdout)
		}
	})
}

// leavesAtPublish is consent that changes between ingest and publication:
// workspace id passed the ingest gate, and has opted out by the time its
// windows are published.
type leavesAtPublish struct {
	pipeline.Consent
	ws pipeline.Pseudonym
	id string
}

func (c *leavesAtPublish) AtPublish(ws pipeline.Pseudonym) (pipeline.Reason, string) {
	if ws == c.ws {
		return pipeline.ReasonOptedOutBeforePublish, c.id
	}
	return c.Consent.AtPublish(ws)
}

// withdrawnAtPublication runs the golden case into out, wired as deid run
// wires it but with the run's consent state replaced by what consentOf makes
// of it (given the run's pseudonym key), and returns how many events of
// workspace id the publisher withdrew as opted out before publication. The
// run's stages are closed when the test ends.
func withdrawnAtPublication(t *testing.T, out, id string, consentOf func(c pipeline.Consent, key []byte) pipeline.Consent) int64 {
	t.Helper()
	cfg := defaultConfig()
	cfg.Input.Paths = []string{filepath.Join(goldenCase, "events.ndjson")}
	cfg.Consent.SettingsPath = filepath.Join(goldenCase, "settings.ndjson")
	cfg.Out = out
	must(t, cfg.Validate())
	key, _, err := cfg.pseudonymKey()
	must(t, err)
	ctx := context.Background()
	b := &builder{cfg: &cfg, key: key, log: zap.NewNop(), stats: &pipeline.Stats{}}
	t.Cleanup(b.close)
	st, err := b.stages(ctx)
	must(t, err)
	st.Consent = consentOf(st.Consent, key)
	pcfg := cfg.Pipeline
	pcfg.PolicyVersion = cfg.policyVersion()
	pcfg.PipelineVersion = version
	_, err = pipeline.Run(ctx, pcfg, *st)
	must(t, err)
	withdrawn := int64(0)
	for _, e := range exclusionEntries(t, out) {
		if e.Cell != nil && e.Cell.WorkspaceID == id && e.Reason == pipeline.ReasonOptedOutBeforePublish {
			withdrawn += e.Cell.Events
		}
	}
	return withdrawn
}

// TestAWithdrawalAtPublicationIsNoContribution reproduces a workspace that
// opts out after its events were ingested but before their window is
// published: the publisher withdraws them, and neither verify nor
// exclusions may call them contributions.
func TestAWithdrawalAtPublicationIsNoContribution(t *testing.T) {
	in := filepath.Join(goldenCase, "events.ndjson")
	out := filepath.Join(t.TempDir(), "out")
	withdrawn := withdrawnAtPublication(t, out, "ws02", func(c pipeline.Consent, key []byte) pipeline.Consent {
		return &leavesAtPublish{Consent: c, ws: pipeline.NewPseudonymizer(key).Of([]byte("ws02")), id: "ws02"}
	})
	// Of ws02's 9 lines, 4 pass every gate; the others are duplicates,
	// late or malformed.
	if withdrawn != 4 {
		t.Fatalf("the publisher withdrew %d events of ws02, want the 4 that passed the gates", withdrawn)
	}

	// The settings as of publication: ws02 opted out.
	after := settingsWith(t, `{"workspace_id":"ws02","ai_training_opt_out":true,"deleted":false,"updated_at":"2026-10-20T00:00:00Z","updated_by_role":"owner"}`)
	code, stdout, _ := deidExit("verify", out, "--input", in, "--settings", after)
	if code != 0 || !strings.Contains(stdout, "(4) was withdrawn at publication") {
		t.Errorf("verify: exit %d, want 0 with the 4 withdrawn records counted as excluded:\n%s", code, stdout)
	}
	report := deid(t, "exclusions", out, "--workspace", "ws02", "--input", in, "--settings", after)
	if strings.Contains(report, "YES") || !strings.Contains(report, "every one was withdrawn at publication") {
		t.Errorf("deid exclusions calls a withdrawal a contribution:\n%s", report)
	}
}

// TestAnUnattributableSettingsRecordMakesKafkaModeUnready produces a
// settings record with no key and no readable workspace_id while a
// streaming run follows the topic: /readyz must fail, and the follower's
// error must be said.
func TestAnUnattributableSettingsRecordMakesKafkaModeUnready(t *testing.T) {
	c := kafkatest.Fake(t)
	t.Setenv("DEID_PSEUDONYM_KEY", "consent-test-key-0123456789")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 5, 3_000, 1, 60
	s := produceSample(t, c, cfg)
	addr := freeAddr(t)
	args := s.args(c, filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state"))
	args = append(args[:len(args)-1], "--http-addr", addr) // a streaming run
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- runCtx(ctx, args, &stdout, &stderr) }()
	ready := func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitFor(t, 60*time.Second, "/readyz", ready)
	kafkatest.Produce(t, c.Brokers, s.settings, []kafkatest.Message{{Partition: 0, Value: []byte(`{"ai_training_opt_out":"no"}`)}})
	waitFor(t, 30*time.Second, "/readyz to fail", func() bool { return !ready() })
	stop()
	select {
	case code := <-exit:
		if code == 0 {
			t.Errorf("exit 0: a run whose consent failed must not end as a success")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop within 30s of its stop signal")
	}
	if !strings.Contains(stderr.String(), "names no workspace") {
		t.Errorf("the log does not say why consent stopped:\n%s", stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKafkaModeLogsSkippedUnattributableRecords runs Kafka mode with
// consent.unattributable: skip over a settings topic holding a record that
// names no workspace: the run goes on, the record is logged once in the
// settings chain, and a second run over the same output does not log it
// again.
func TestKafkaModeLogsSkippedUnattributableRecords(t *testing.T) {
	c := kafkatest.Fake(t)
	t.Setenv("DEID_PSEUDONYM_KEY", "consent-test-key-0123456789")
	cfg := gen.DefaultConfig()
	cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 6, 2_000, 1, 60
	s := produceSample(t, c, cfg)
	kafkatest.Produce(t, c.Brokers, s.settings, []kafkatest.Message{{Partition: 0, Value: []byte(`{"ai_training_opt_out":"no"}`)}})
	b, err := os.ReadFile(s.conf)
	must(t, err)
	must(t, os.WriteFile(s.conf, append(b, "consent:\n  unattributable: skip\n"...), 0o644))
	out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
	logged := func() []string {
		var got []string
		for _, e := range exclusionEntries(t, out) {
			if e.Reason == pipeline.ReasonConsentUnattributable {
				got = append(got, e.Pos.String())
			}
		}
		return got
	}
	want := []string{s.settings + "[0]@" + strconv.FormatInt(s.stats.Settings.Lines, 10)}
	deid(t, s.args(c, out, state)...)
	if diff := cmp.Diff(want, logged()); diff != "" {
		t.Errorf("consent_unattributable entries (-want +got):\n%s", diff)
	}
	deid(t, s.args(c, out, state)...)
	if diff := cmp.Diff(want, logged()); diff != "" {
		t.Errorf("after a second run (-want +got):\n%s", diff)
	}
}
