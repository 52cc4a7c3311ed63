package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/sinks/deadletter"
)

// keepInput is a small file-mode input whose every line is malformed, and
// whose settings opt one workspace out: the hazards of dead_letters.keep_payload.
type keepInput struct {
	in, settings string
	// lines are the input lines; withheld what each dead letter must say
	// ("" when the bytes are kept).
	lines, withheld []string
}

const keepCaption = "Glow up with my new serum, link in bio"

func writeKeepInput(t *testing.T) keepInput {
	t.Helper()
	dir := t.TempDir()
	k := keepInput{in: filepath.Join(dir, "in"), settings: filepath.Join(dir, "settings.ndjson")}
	must(t, os.MkdirAll(k.in, 0o755))
	writeFile(t, k.settings, `{"workspace_id":"ws_ok","ai_training_opt_out":false,"deleted":false,"updated_at":"2024-12-01T00:00:00Z","updated_by_role":"owner"}
{"workspace_id":"ws_gone","ai_training_opt_out":true,"deleted":false,"updated_at":"2024-12-01T00:00:00Z","updated_by_role":"owner"}
{"workspace_id":"ws_del","ai_training_opt_out":false,"deleted":true,"updated_at":"2024-12-01T00:00:00Z","updated_by_role":"owner"}
`)
	campaign := func(id, ws, extra string) string {
		return `{"event_id":"` + id + `","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"` + ws +
			`","payload":{"campaign_id":"cmp_1","creator_id":"cr_1","follower_count":1000,"caption":"` + keepCaption + `"` + extra + `}}`
	}
	for _, c := range []struct{ line, withheld string }{
		{campaign("e1", "ws_ok", `,"clicks":-1`), ""},
		{`{"event_id":"e2","event_type":"message.direct","occurred_at":7,"workspace_id":"ws_ok","payload":{"body":"Hi Jane, my number is +1 415 555 0134"}}`,
			deadletter.WithheldMessageType},
		{campaign("e3", "ws_gone", `,"clicks":-1`), deadletter.WithheldExcludedWorkspace},
		{campaign("e4", "ws_del", `,"clicks":-1`), deadletter.WithheldExcludedWorkspace},
		{campaign("e5", "ws_unknown", `,"clicks":-1`), deadletter.WithheldExcludedWorkspace},
		{"\x00\xff call me at home, Jane: +1 415 555 0134", deadletter.WithheldUnreadable},
	} {
		k.lines = append(k.lines, c.line)
		k.withheld = append(k.withheld, c.withheld)
	}
	writeFile(t, filepath.Join(k.in, "events-00.ndjson"), strings.Join(k.lines, "\n")+"\n")
	return k
}

// runKeep runs deid over k with dead_letters.keep_payload and returns the
// output directory.
func runKeep(t *testing.T, k keepInput) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "deid.yaml")
	writeFile(t, conf, "dead_letters:\n  keep_payload: true\n")
	out := filepath.Join(dir, "out")
	deid(t, "run", "--config", conf, "--input", k.in, "--settings", k.settings, "--out", out)
	return out
}

func TestKeepPayloadEndToEnd(t *testing.T) {
	k := writeKeepInput(t)
	out := runKeep(t, k)
	path := filepath.Join(out, "dead-letters", "events-00.ndjson%5B0%5D.ndjson")
	lines, err := deadletter.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Kept     string
		Withheld string
		Length   int
		SHA256   string
	}
	var want, have []got
	for i, l := range k.lines {
		sum := sha256.Sum256([]byte(l))
		g := got{Withheld: k.withheld[i], Length: len(l), SHA256: hex.EncodeToString(sum[:])}
		if k.withheld[i] == "" {
			g.Kept = l
		}
		want = append(want, g)
	}
	for _, l := range lines {
		have = append(have, got{Kept: string(l.Value), Withheld: l.PayloadWithheld, Length: l.Length, SHA256: l.SHA256})
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("dead letters with keep_payload (-want +got):\n%s", diff)
	}
	code, stdout, stderr := deidExit("verify", out, "--input", k.in, "--settings", k.settings)
	if code != 0 || !strings.Contains(stdout, "1 dead letters keep their record's bytes (dead_letters.keep_payload: true), 1 of them with free text of the input") {
		t.Errorf("deid verify: exit %d, want 0 and a note of the kept record\n%s\n%s", code, stdout, stderr)
	}
}

// TestVerifyFlagsWhatDeadLettersMustNotKeep edits the dead letters of a
// keep_payload run to keep what the sinks withhold, or to quote free text
// in a detail, and expects verify to fail naming the dead letter.
func TestVerifyFlagsWhatDeadLettersMustNotKeep(t *testing.T) {
	k := writeKeepInput(t)
	clean := runKeep(t, k)
	// keep makes dead letter i keep its record's bytes.
	keep := func(i int) func(l map[string]any) {
		return func(l map[string]any) {
			l["value_base64"] = []byte(k.lines[i])
			delete(l, "payload_withheld")
		}
	}
	cases := []struct {
		name string
		line int
		edit func(l map[string]any)
		want string
	}{
		{"a kept message", 1, keep(1), "dead letter events-00.ndjson[0]@2: keeps the bytes of a message record (P4)"},
		{"a kept record of an opted-out workspace", 2, keep(2), "dead letter events-00.ndjson[0]@3: keeps the bytes of a record of workspace ws_gone, whose records are excluded (opted_out)"},
		{"a kept record too broken to tell", 5, keep(5), "dead letter events-00.ndjson[0]@6: keeps the bytes of a record too broken to tell"},
		{"kept bytes that are not the record's", 0, func(l map[string]any) { l["sha256"] = strings.Repeat("0", 64) }, "the bytes it keeps are not the record its length and SHA-256 name"},
		{"a detail quoting the record", 3, func(l map[string]any) { l["detail"] = "bad value " + keepCaption }, "its detail holds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := copyTree(t, clean)
			path := filepath.Join(out, "dead-letters", "events-00.ndjson%5B0%5D.ndjson")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			var l map[string]any
			must(t, json.Unmarshal([]byte(rows[c.line]), &l))
			c.edit(l)
			e, err := json.Marshal(l)
			must(t, err)
			rows[c.line] = string(e)
			must(t, os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o600))
			code, stdout, _ := deidExit("verify", out, "--input", k.in, "--settings", k.settings)
			if code != 1 || !strings.Contains(stdout, c.want) {
				t.Errorf("deid verify: exit %d, want 1 and %q:\n%s", code, c.want, stdout)
			}
		})
	}
}
