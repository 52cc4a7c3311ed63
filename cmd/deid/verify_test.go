package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sinks/signing"
)

// deidExit runs the command line in-process and returns its exit status
// and output.
func deidExit(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// copyTree copies an output directory, so a test can tamper with it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// longestChain returns the directory of the partition chain with the most
// segments (at least 3, for tampering with a middle one).
func longestChain(t *testing.T, out string) string {
	t.Helper()
	reports, err := exclusions.VerifyAll(out)
	if err != nil {
		t.Fatal(err)
	}
	best := reports[0]
	for _, r := range reports {
		if r.Name != "publish" && len(r.Segments) > len(best.Segments) {
			best = r
		}
	}
	if len(best.Segments) < 3 {
		t.Fatalf("no chain has 3 segments: the sample is too small for this test")
	}
	return best.Dir
}

func firstManifest(t *testing.T, out string) (string, *parquet.Manifest) {
	t.Helper()
	paths, err := parquet.ListManifests(out)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifest: %v", err)
	}
	m, err := parquet.ReadManifest(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return paths[0], m
}

// TestVerifyPassesAnUntouchedOutput runs deid verify on a fresh run, with
// and without the input, and expects every check to hold.
func TestVerifyPassesAnUntouchedOutput(t *testing.T) {
	s := generatedSample(t)
	for _, args := range [][]string{
		{"verify", s.out},
		{"verify", s.out, "--input", s.in, "--settings", filepath.Join(s.in, gen.SettingsFileName)},
	} {
		code, stdout, stderr := deidExit(args...)
		if code != 0 || strings.Contains(stdout, "✗") || !strings.Contains(stdout, "VERIFIED: all") {
			t.Fatalf("deid %s: exit %d\n%s\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		if !strings.Contains(stdout, "the exclusion log is hash-chained but unsigned") {
			t.Errorf("an unsigned output is not called unsigned:\n%s", stdout)
		}
	}
	_, stdout, _ := deidExit("verify", s.out, "--input", s.in, "--settings", filepath.Join(s.in, gen.SettingsFileName))
	for _, want := range []string{"opted out of AI training (P3) contributed", "deleted workspaces (P6) contributed",
		"message records (P4) contributed", "13–17 without guardian consent (P5) contributed", "no free text of the input"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the report lacks the check %q:\n%s", want, stdout)
		}
	}
}

// TestVerifyNamesTampering tampers with a copy of a run's output in one
// way per case, and expects deid verify to fail naming the problem.
func TestVerifyNamesTampering(t *testing.T) {
	s := generatedSample(t)
	settings := filepath.Join(s.in, gen.SettingsFileName)
	cases := []struct {
		name   string
		tamper func(t *testing.T, out string)
		input  bool
		want   []string
	}{
		{"a byte of a dataset file edited", func(t *testing.T, out string) {
			path, m := firstManifest(t, out)
			data := filepath.Join(filepath.Dir(path), m.Files[0].Path)
			b, _ := os.ReadFile(data)
			b[len(b)/2] ^= 0x20
			must(t, os.WriteFile(data, b, 0o644))
		}, false, []string{"the file was changed after it was committed", m0file(t, s.out)}},

		{"a middle exclusion segment deleted", func(t *testing.T, out string) {
			dir := filepath.Join(out, "exclusions", filepath.Base(longestChain(t, s.out)))
			must(t, os.Remove(filepath.Join(dir, exclusions.SegmentName(2))))
		}, false, []string{"segment-000002.parquet is missing: the chain jumps from segment-000001.parquet to segment-000003.parquet"}},

		{"two exclusion segments swapped", func(t *testing.T, out string) {
			dir := filepath.Join(out, "exclusions", filepath.Base(longestChain(t, s.out)))
			a, b := filepath.Join(dir, exclusions.SegmentName(2)), filepath.Join(dir, exclusions.SegmentName(3))
			must(t, os.Rename(a, a+".x"))
			must(t, os.Rename(b, a))
			must(t, os.Rename(a+".x", b))
		}, false, []string{"segment-000002.parquet: records sequence number 3: segments were renamed or reordered"}},

		{"an accounting record edited", func(t *testing.T, out string) {
			editJSON(t, recordPath(t, out), func(m map[string]any) {
				acct := m["accounting"].(map[string]any)
				acct["contributed_events"] = acct["contributed_events"].(float64) + 1
			})
		}, false, []string{"≠ published", "the record was edited or replaced after the commit"}},

		{"an accounting record's partition accounting edited consistently", func(t *testing.T, out string) {
			editJSON(t, recordPath(t, out), func(m map[string]any) {
				p := m["partitions"].([]any)[0].(map[string]any)
				p["read"] = p["read"].(float64) + 1
				p["dead_letters"] = p["dead_letters"].(float64) + 1
			})
		}, false, []string{"its head segment", "one of them was edited", "the record was edited or replaced after the commit"}},

		{"an accounting record deleted", func(t *testing.T, out string) {
			must(t, os.Remove(recordPath(t, out)))
		}, false, []string{"accounting.json is missing"}},

		{"a window in the middle of a dataset deleted", func(t *testing.T, out string) {
			must(t, os.RemoveAll(filepath.Join(out, "datasets", "campaign_metrics", middleWindow(t, out, "campaign_metrics"))))
		}, false, []string{"window campaign_metrics " + middleWindow(t, s.out, "campaign_metrics") + " is missing: the manifest of"}},

		{"a window in the middle of a dataset replaced by an older one", func(t *testing.T, out string) {
			ds := filepath.Join(out, "datasets", "campaign_metrics")
			mid := middleWindow(t, out, "campaign_metrics")
			editJSON(t, filepath.Join(ds, mid, parquet.ManifestName), func(m map[string]any) {
				m["rows"] = m["rows"].(float64) + 0 // re-encoded: other bytes, same content
				m["pipeline_version"] = "v0.0.0-older"
			})
		}, false, []string{"window campaign_metrics " + middleWindow(t, s.out, "campaign_metrics") + " was replaced or edited"}},

		{"a row violating k added", func(t *testing.T, out string) {
			commitWindow(t, out, "platform", []string{"instagram", "reel", "beauty.skincare", "DE", "micro"}, 2)
		}, false, []string{"workspaces = 2 < k = 10"}},

		{"free text of the input in a dataset row", func(t *testing.T, out string) {
			commitWindow(t, out, "industry", []string{"instagram", "reel", caption(t, s.in), "DE", "micro"}, 12)
		}, true, []string{"free text of the input reached an output", "payload.caption"}},

		{"free text of the input in a file beside the outputs", func(t *testing.T, out string) {
			must(t, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("see "+caption(t, s.in)+"\n"), 0o644))
		}, true, []string{"notes.txt holds"}},

		// Dead letters after the last commit's position are a stopped
		// run's (a note); one missing before it is a loss.
		{"a dead letter deleted", func(t *testing.T, out string) {
			files, _ := filepath.Glob(filepath.Join(out, "dead-letters", "*.ndjson"))
			if len(files) == 0 {
				t.Fatal("the sample has no dead letters")
			}
			b, err := os.ReadFile(files[0])
			must(t, err)
			_, rest, _ := strings.Cut(string(b), "\n")
			must(t, os.WriteFile(files[0], []byte(rest), 0o644))
		}, false, []string{"dead letters in dead-letters/ up to position"}},

		{"a data file no manifest lists", func(t *testing.T, out string) {
			path, m := firstManifest(t, out)
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), m.Files[0].Path))
			must(t, os.WriteFile(filepath.Join(filepath.Dir(path), "part-0000000000000000.parquet"), b, 0o644))
		}, false, []string{"a data file the manifest does not list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := copyTree(t, s.out)
			c.tamper(t, out)
			args := []string{"verify", out}
			if c.input {
				args = append(args, "--input", s.in, "--settings", settings)
			}
			code, stdout, stderr := deidExit(args...)
			if testing.Verbose() {
				t.Log(stdout)
			}
			if code != 1 {
				t.Errorf("deid verify: exit %d, want 1\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "NOT VERIFIED") {
				t.Errorf("the verdict is not NOT VERIFIED:\n%s", stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("the report does not say %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestVerifyCatchesAnOptedOutContribution gives verify settings in which
// a workspace that contributed had opted out, and expects it to name the
// records that contributed.
func TestVerifyCatchesAnOptedOutContribution(t *testing.T) {
	s := generatedSample(t)
	ws := s.stats.Workspaces
	var included string
	for _, id := range ws.All {
		if s.stats.ConsentReason(id) == "" && !slices.Contains(ws.ReOptInOwner, id) {
			included = id
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(s.in, gen.SettingsFileName))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte(fmt.Sprintf(`{"workspace_id":%q,"ai_training_opt_out":true,"deleted":false,"updated_at":"2024-01-01T00:00:00Z","updated_by_role":"owner"}`+"\n", included))...)
	settings := filepath.Join(t.TempDir(), "settings.ndjson")
	must(t, os.WriteFile(settings, b, 0o644))
	code, stdout, _ := deidExit("verify", s.out, "--input", s.in, "--settings", settings)
	if code != 1 || !strings.Contains(stdout, "workspace "+included+"): neither excluded nor a dead letter: it contributed") {
		t.Errorf("exit %d; the report does not name %s's records as contributed:\n%s", code, included, stdout)
	}
}

// TestVerifySignatures signs a copy of an output as the sinks do and
// checks that verify accepts it with the right key, and names an unsigned
// file, a file edited after signing and a signature by another key.
func TestVerifySignatures(t *testing.T) {
	s := generatedSample(t)
	out := copyTree(t, s.out)
	dir := t.TempDir()
	deid(t, "keygen", "--out", dir)
	signer, err := signing.Load(filepath.Join(dir, "deid-signing.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	signAll(t, out, signer)
	pub := filepath.Join(dir, "deid-signing.pub")

	code, stdout, _ := deidExit("verify", out, "--public-key", pub)
	if code != 0 || !strings.Contains(stdout, "carry a valid ed25519 signature by key "+signer.KeyID()) {
		t.Fatalf("a signed output does not verify: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = deidExit("verify", out)
	if code != 0 || !strings.Contains(stdout, "carry a signature, not checked: pass --public-key") {
		t.Errorf("without a key, verify does not say the signatures went unchecked: exit %d\n%s", code, stdout)
	}

	// Tamper: one manifest unsigned, one segment's signature by another key.
	path, _ := firstManifest(t, out)
	must(t, os.Remove(path+signing.Suffix))
	_, other, _ := ed25519.GenerateKey(nil)
	chain := longestChain(t, out)
	seg := filepath.Join(chain, exclusions.SegmentName(1))
	sum, _ := sha256File(seg)
	rel, _ := filepath.Rel(out, seg)
	forged, _ := signing.Sign(signing.NewEd25519(other), filepath.ToSlash(rel), sum)
	must(t, os.WriteFile(seg+signing.Suffix, forged, 0o644))

	code, stdout, _ = deidExit("verify", out, "--public-key", pub)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range []string{"_manifest.json: unsigned", "segment-000001.parquet: signed with key " + signing.KeyID(other.Public().(ed25519.PublicKey))} {
		if !strings.Contains(stdout, w) {
			t.Errorf("the report does not say %q:\n%s", w, stdout)
		}
	}
}

// signAll writes the signature of every manifest and segment under out,
// as the sinks do with WithSigner.
func signAll(t *testing.T, out string, s signing.Signer) {
	t.Helper()
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if d.Name() != parquet.ManifestName && !(strings.HasPrefix(d.Name(), "segment-") && strings.HasSuffix(d.Name(), ".parquet")) {
			return nil
		}
		sum, err := sha256File(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		b, err := signing.Sign(s, filepath.ToSlash(rel), sum)
		if err != nil {
			return err
		}
		return os.WriteFile(path+signing.Suffix, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sha256File(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", sha256Sum(b)), nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func m0file(t *testing.T, out string) string {
	t.Helper()
	_, m := firstManifest(t, out)
	return m.Files[0].Path
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	edit(m)
	b, _ = json.MarshalIndent(m, "", "  ")
	must(t, os.WriteFile(path, b, 0o644))
}

// caption returns a caption of the sample's input: free text that no
// output may hold.
func caption(t *testing.T, in string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(in, "events-*"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var v struct {
				Payload struct {
					Caption string `json:"caption"`
				} `json:"payload"`
			}
			if json.Unmarshal(sc.Bytes(), &v) == nil && len(v.Payload.Caption) >= 30 {
				fh.Close()
				return v.Payload.Caption
			}
		}
		fh.Close()
	}
	t.Fatal("no caption in the sample")
	return ""
}

// commitWindow writes a new campaign_metrics window with the sink itself:
// one row with the given dimension values and workspace and creator
// counts, its accounting consistent, and the chain heads of an existing
// manifest.
func commitWindow(t *testing.T, out, _ string, dims []string, entities int64) {
	t.Helper()
	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	spec := specs[0]
	_, m := firstManifest(t, out)
	row := pipeline.Row{Dims: dims, Level: 0, Values: make([]pipeline.Value, len(spec.Measures))}
	for i, ms := range spec.Measures {
		switch {
		case ms.Name == "events":
			row.Values[i] = pipeline.Value{Int: 40}
		case ms.Name == "workspaces" || ms.Name == "creators" || ms.Name == "campaigns":
			row.Values[i] = pipeline.Value{Int: entities}
		case !ms.IsInt():
			row.Values[i] = pipeline.Value{Null: true}
		}
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := parquet.DefaultConfig()
	cfg.Dir = out
	sink, err := parquet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = sink.Commit(context.Background(), &pipeline.WindowOutput{
		Spec: spec, Window: pipeline.Window{Start: start.UnixMicro(), End: start.Add(24 * time.Hour).UnixMicro()},
		Rows: []pipeline.Row{row},
		Acct: pipeline.WindowAccounting{Contributed: 40, Published: 40, RowsByLevel: map[int]int64{0: 1}, EventsByLevel: map[int]int64{0: 40},
			WithdrawnByReason: map[string]int64{}, SuppressedByReason: map[string]int64{}},
		Partitions: recordOf(t, out, m).Partitions, ChainHeads: m.ExclusionChainHeads, PolicyVersion: m.PolicyVersion, PipelineVersion: m.PipelineVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyReportText checks the Go API: a report's sections come in
// report order and the text ends with the verdict.
func TestVerifyReportText(t *testing.T) {
	s := generatedSample(t)
	r, err := verify.Run(context.Background(), s.out, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	must(t, r.WriteText(&b))
	text := b.String()
	last := -1
	for _, sec := range []string{verify.SectionFiles, verify.SectionChain, verify.SectionAccounting, verify.SectionRows, verify.SectionInput, verify.SectionSignatures} {
		i := strings.Index(text, "\n"+sec+"\n")
		if i < 0 || i < last {
			t.Errorf("section %q missing or out of order", sec)
		}
		last = i
	}
	if !strings.HasSuffix(text, r.Verdict()+"\n") {
		t.Errorf("the text does not end with the verdict")
	}
}

// TestSignedRunVerifies signs a real run (secrets.signing_key_file) and
// verifies every manifest and segment signature with the public key.
func TestSignedRunVerifies(t *testing.T) {
	keys := t.TempDir()
	deid(t, "keygen", "--out", keys)
	conf := filepath.Join(t.TempDir(), "deid.yaml")
	must(t, os.WriteFile(conf, []byte("secrets:\n  signing_key_file: "+filepath.Join(keys, "deid-signing.key")+"\n"), 0o644))
	golden := "../../testdata/golden/campaigns"
	out := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--config", conf, "--input", filepath.Join(golden, "events.ndjson"),
		"--settings", filepath.Join(golden, "settings.ndjson"), "--out", out)
	sigs, _ := filepath.Glob(filepath.Join(out, "datasets", "*", "*", parquet.ManifestName+signing.Suffix))
	if len(sigs) == 0 {
		t.Fatal("a run with a signing key wrote no manifest signature")
	}
	code, stdout, _ := deidExit("verify", out, "--public-key", filepath.Join(keys, "deid-signing.pub"))
	if code != 0 || !strings.Contains(stdout, "carry a valid ed25519 signature") {
		t.Fatalf("a signed run does not verify: exit %d\n%s", code, stdout)
	}
}
