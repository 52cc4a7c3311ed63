package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"crypto/sha256"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/transforms/aggregate"
)

// sample is one generated input and a run of deid over it, shared by the
// tests of this file.
type sample struct {
	in, out string
	// anchors is the anchor log the run appended to.
	anchors string
	stats   gen.Stats
}

var (
	sampleOnce sync.Once
	theSample  sample
	sampleErr  error
)

func generatedSample(t *testing.T) sample {
	t.Helper()
	sampleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deid-sample-")
		if err != nil {
			sampleErr = err
			return
		}
		cfg := gen.DefaultConfig()
		cfg.Seed = 7
		cfg.Events = 60_000
		if testing.Short() {
			// Every hazard still occurs; the end-to-end checks run in a
			// quarter of the time.
			cfg.Events = 15_000
		}
		cfg.Partitions = 3
		cfg.Workspaces = 300
		theSample.in = filepath.Join(dir, "in")
		theSample.out = filepath.Join(dir, "out")
		theSample.anchors = filepath.Join(dir, "anchors.ndjson")
		theSample.stats, sampleErr = gen.WriteFiles(theSample.in, cfg)
		if sampleErr != nil {
			return
		}
		var stdout, stderr bytes.Buffer
		if code := run([]string{"run", "--input", theSample.in, "--settings", filepath.Join(theSample.in, gen.SettingsFileName),
			"--out", theSample.out, "--anchors", theSample.anchors}, &stdout, &stderr); code != 0 {
			sampleErr = fmt.Errorf("deid run: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
	})
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	return theSample
}

// inputLine is what the tests read independently from one input line.
type inputLine struct {
	pos  string
	raw  []byte
	ok   bool // valid JSON object
	typ  string
	ws   string
	ids  []string
	age  *int64
	gcon bool
}

func readInput(t *testing.T, dir string) []inputLine {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "events-*"))
	var lines []inputLine
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		n := 0
		for sc.Scan() {
			n++
			l := inputLine{pos: fmt.Sprintf("%s[0]@%d", filepath.Base(f), n), raw: slices.Clone(sc.Bytes())}
			var v struct {
				EventID     string `json:"event_id"`
				EventType   string `json:"event_type"`
				WorkspaceID string `json:"workspace_id"`
				UserID      string `json:"user_id"`
				Payload     struct {
					CampaignID      string `json:"campaign_id"`
					CreatorID       string `json:"creator_id"`
					CreatorAge      *int64 `json:"creator_age"`
					GuardianConsent bool   `json:"guardian_consent"`
				} `json:"payload"`
			}
			if json.Unmarshal(l.raw, &v) == nil {
				l.ok, l.typ, l.ws = true, v.EventType, v.WorkspaceID
				l.ids = []string{v.EventID, v.WorkspaceID, v.UserID, v.Payload.CampaignID, v.Payload.CreatorID}
				l.age, l.gcon = v.Payload.CreatorAge, v.Payload.GuardianConsent
			}
			lines = append(lines, l)
		}
		fh.Close()
	}
	return lines
}

// exclusionEntries verifies the hash chains of the exclusion log under out
// and returns every entry of every segment.
func exclusionEntries(t *testing.T, out string) []pipeline.Exclusion {
	t.Helper()
	reports, err := exclusions.VerifyAll(out)
	if err != nil {
		t.Fatalf("exclusion log chain: %v", err)
	}
	var all []pipeline.Exclusion
	for _, r := range reports {
		for _, seg := range r.Segments {
			entries, _, err := exclusions.ReadSegment(seg.Path)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, entries...)
		}
	}
	return all
}

// countValues counts the values of m: reason → records.
func countValues(m map[string]string) map[string]int64 {
	n := map[string]int64{}
	for _, v := range m {
		n[v]++
	}
	return n
}

// dispositions reads the exclusion log and dead letters: position → reason.
func dispositions(t *testing.T, out string) (excluded, dead map[string]string) {
	t.Helper()
	excluded, dead = map[string]string{}, map[string]string{}
	for _, e := range exclusionEntries(t, out) {
		if e.Cell != nil {
			continue
		}
		if prev, dup := excluded[e.Pos.String()]; dup {
			t.Errorf("%s has two exclusion entries: %s and %s", e.Pos, prev, e.Reason)
		}
		excluded[e.Pos.String()] = e.Reason.String()
	}
	letters, _ := filepath.Glob(filepath.Join(out, "dead-letters", "*"))
	for _, p := range letters {
		ls, err := deadletter.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			pos := fmt.Sprintf("%s[%d]@%d", l.Source, l.Partition, l.Offset)
			if _, dup := dead[pos]; dup {
				t.Errorf("%s is dead-lettered twice", pos)
			}
			dead[pos] = l.Reason
		}
	}
	return excluded, dead
}

// TestEveryRecordHasExactlyOneDisposition checks the accounting of contract §8
// against the generator's own count of what each line must become.
func TestEveryRecordHasExactlyOneDisposition(t *testing.T) {
	s := generatedSample(t)
	excluded, dead := dispositions(t, s.out)
	for pos := range excluded {
		if _, both := dead[pos]; both {
			t.Errorf("%s is both excluded and a dead letter", pos)
		}
	}
	byReason, byCode := countValues(excluded), countValues(dead)
	if diff := cmp.Diff(s.stats.Expected.Excluded, byReason); diff != "" {
		t.Errorf("exclusions by reason (-generator +deid):\n%s", diff)
	}
	if diff := cmp.Diff(s.stats.Expected.DeadLetters, byCode); diff != "" {
		t.Errorf("dead letters by code (-generator +deid):\n%s", diff)
	}
	contributed := map[string]int64{}
	manifests, err := parquet.ListManifests(s.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range manifests {
		m, err := parquet.ReadManifest(mp)
		if err != nil {
			t.Fatal(err)
		}
		rec := recordOf(t, s.out, m)
		a := rec.Accounting
		if a.Contributed != a.Published+a.Withdrawn+a.Suppressed {
			t.Errorf("%s: contributed %d != published %d + withdrawn %d + suppressed %d", mp, a.Contributed, a.Published, a.Withdrawn, a.Suppressed)
		}
		contributed[m.Dataset] += a.Contributed
		for _, p := range rec.Partitions {
			if !p.Balanced() {
				t.Errorf("%s: partition %s does not balance: %+v", mp, p.Partition, p)
			}
		}
	}
	if diff := cmp.Diff(s.stats.Expected.Contributed, contributed); diff != "" {
		t.Errorf("contributed events by dataset (-generator +deid):\n%s", diff)
	}
	total := int64(len(excluded) + len(dead))
	for _, n := range contributed {
		total += n
	}
	if total != s.stats.Events {
		t.Errorf("%d dispositions for %d input lines", total, s.stats.Events)
	}
}

// TestNothingForbiddenContributes checks promises P3–P6 line by line: every
// input record of an opted-out, deleted or unknown workspace, every message
// and every minor's record is in the exclusion log or the dead letters —
// and since every record has exactly one disposition, none contributed.
func TestNothingForbiddenContributes(t *testing.T) {
	s := generatedSample(t)
	excluded, dead := dispositions(t, s.out)
	ws := s.stats.Workspaces
	forbidden := map[string]string{}
	for _, id := range ws.OptedOut {
		forbidden[id] = "opted out"
	}
	for _, id := range ws.Deleted {
		forbidden[id] = "deleted"
	}
	for _, id := range ws.Unknown {
		forbidden[id] = "unknown consent"
	}
	counts := map[string]int{}
	for _, l := range readInput(t, s.in) {
		var why string
		switch {
		case !l.ok:
			continue
		case forbidden[l.ws] != "":
			why = forbidden[l.ws]
		case strings.HasPrefix(l.typ, "message.") || l.typ == "support.message":
			why = "message"
		case l.age != nil && (*l.age < 13 || (*l.age <= 17 && !l.gcon)):
			why = "minor"
		default:
			continue
		}
		counts[why]++
		if excluded[l.pos] == "" && dead[l.pos] == "" {
			t.Errorf("%s (%s) was neither excluded nor dead-lettered: it contributed", l.pos, why)
		}
	}
	for _, why := range []string{"opted out", "deleted", "unknown consent", "message", "minor"} {
		if counts[why] == 0 {
			t.Errorf("the sample has no %s record: this test could not fail for it", why)
		}
	}
}

// TestPublishedRowsAreSafe checks every published row: k over every
// protected entity from its counts, only declared columns, no identifier and
// no free text among its values.
func TestPublishedRowsAreSafe(t *testing.T) {
	s := generatedSample(t)
	ids := map[string]bool{}
	for _, l := range readInput(t, s.in) {
		for _, id := range l.ids {
			if id != "" {
				ids[id] = true
			}
		}
	}
	specs, err := aggregate.Build(aggregate.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	manifests, _ := parquet.ListManifests(s.out)
	rows := 0
	for _, mp := range manifests {
		m, _ := parquet.ReadManifest(mp)
		spec := specs[slices.IndexFunc(specs, func(sp *pipeline.DatasetSpec) bool { return sp.Name == m.Dataset })]
		declared := map[string]bool{"window_start": true, "window_end": true, "generalization_level": true}
		for _, d := range spec.Dimensions {
			declared[d.Name] = true
			declared[d.Name+"_level"] = true
		}
		for _, ms := range spec.Measures {
			declared[ms.Name] = true
		}
		for _, f := range m.Files {
			rs, err := parquet.ReadRows(filepath.Join(filepath.Dir(mp), f.Path))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				rows++
				for col, v := range r {
					if !declared[col] {
						t.Errorf("%s: undeclared column %q", mp, col)
					}
					if str, ok := v.(string); ok && (ids[str] || strings.Contains(str, gen.CanaryMarker) || strings.Contains(str, "@")) {
						t.Errorf("%s: column %s holds %q, an identifier or free text", mp, col, str)
					}
				}
				for _, e := range spec.Entities {
					if !e.Protected {
						continue
					}
					col := e.Name
					if n, _ := r[col].(int64); n < int64(spec.Privacy.K) {
						t.Errorf("%s: row %v has %s = %v < k = %d", mp, r, col, r[col], spec.Privacy.K)
					}
				}
			}
		}
	}
	if rows == 0 {
		t.Fatal("no row published: the sample is too small for this test to mean anything")
	}
}

// TestCanariesReachNoOutput greps every output file, the dead letters
// included (they keep no record's bytes by default), for the canary marker
// planted in message bodies and captions, and decodes every Parquet file
// and every dead letter so that neither compression nor base64 can hide
// one.
func TestCanariesReachNoOutput(t *testing.T) {
	s := generatedSample(t)
	planted := 0
	for _, l := range readInput(t, s.in) {
		if bytes.Contains(l.raw, []byte(gen.CanaryMarker)) {
			planted++
		}
	}
	if planted == 0 {
		t.Fatal("no canary planted in the sample: this test could not fail")
	}
	err := filepath.WalkDir(s.out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Base(filepath.Dir(path)) == "dead-letters" {
			ls, err := deadletter.ReadAll(path)
			if err != nil {
				return err
			}
			for _, l := range ls {
				if l.Value != nil {
					t.Errorf("%s: the dead letter of offset %d keeps its record's bytes by default", path, l.Offset)
				}
				if bytes.Contains(l.Value, []byte(gen.CanaryMarker)) {
					t.Errorf("%s: the dead letter of offset %d holds a canary", path, l.Offset)
				}
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(gen.CanaryMarker)) {
			t.Errorf("%s contains a canary", path)
		}
		if strings.HasSuffix(path, ".parquet") {
			rs, err := parquet.ReadRows(path)
			if err != nil {
				return err
			}
			for _, r := range rs {
				for col, v := range r {
					if str, ok := v.(string); ok && strings.Contains(str, gen.CanaryMarker) {
						t.Errorf("%s: column %s holds a canary", path, col)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunsAreDeterministic runs the same input twice — with different random
// pseudonym keys — and compares the dataset files byte for byte.
func TestRunsAreDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sample a second time; not with -short")
	}
	s := generatedSample(t)
	again := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--input", s.in, "--settings", filepath.Join(s.in, gen.SettingsFileName), "--out", again)
	first, second := datasetFiles(t, s.out), datasetFiles(t, again)
	if len(first) == 0 {
		t.Fatal("no dataset file written")
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("dataset files differ between two runs (-first +second):\n%s", diff)
	}
}

// datasetFiles maps each Parquet data file's path (relative) to its SHA-256.
func datasetFiles(t *testing.T, out string) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join(out, "datasets")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".parquet") {
			b, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(root, path)
			files[rel] = fmt.Sprintf("%x", sha256Sum(b))
		}
		return err
	})
	return files
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
