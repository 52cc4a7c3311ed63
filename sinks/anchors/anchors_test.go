package anchors

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sum(c byte) string { return strings.Repeat(string(c), 64) }

func TestFileAppendsOneLinePerAnchorAndReadsThemBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "anchors.ndjson")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 3, 1, 2, 3, 0, time.UTC)
	want := []Line{
		{Kind: KindChain, Name: "events-00.ndjson[0]", Seq: 1, Event: EventCommit, SHA256: sum('a'), Time: at},
		{Kind: KindDataset, Name: "campaign_metrics", Window: "dt=2026-11-03", Event: EventCommit, SHA256: sum('b'), Prev: sum('c'), Time: at},
	}
	for _, l := range want {
		if err := f.Anchor(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	// Reopened: appends, never truncates.
	f, err = OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := Line{Kind: KindChain, Name: "publish", Seq: 2, Event: EventRollback, SHA256: sum('d'), Time: at}
	must(t, f.Anchor(context.Background(), last))
	must(t, f.Close())
	want = append(want, last)

	got, torn, err := ReadFile(path)
	if err != nil || torn {
		t.Fatalf("ReadFile: torn %v, %v", torn, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestReadToleratesOnlyATornLastLine(t *testing.T) {
	good := `{"kind":"chain","name":"publish","seq":1,"event":"commit","sha256":"` + sum('a') + `","prev_sha256":"","time":"2026-11-03T00:00:00Z"}` + "\n"
	cases := []struct {
		name    string
		text    string
		lines   int
		torn    bool
		wantErr string
	}{
		{"a whole log", good + good, 2, false, ""},
		{"a last line cut short by a crash", good + good[:40], 1, true, ""},
		{"a broken line in the middle", good + good[:40] + "\n" + good, 0, false, "line 2"},
		{"an unknown kind", strings.Replace(good, `"chain"`, `"other"`, 1), 0, false, "line 1: kind"},
		{"a hash that is not one", strings.Replace(good, sum('a'), "abc", 1), 0, false, "not a hex SHA-256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, torn, err := Read(strings.NewReader(c.text))
			switch {
			case c.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("err = %v, want %q", err, c.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case len(lines) != c.lines || torn != c.torn:
				t.Errorf("%d lines, torn %v; want %d, %v", len(lines), torn, c.lines, c.torn)
			}
		})
	}
}

func TestExpect(t *testing.T) {
	at := func(l Line, sec int) Line {
		l.Time = time.Date(2026, 12, 4, 0, 0, sec, 0, time.UTC)
		return l
	}
	ds := func(w string, s byte) Line {
		return Line{Kind: KindDataset, Name: "campaign_metrics", Window: w, Event: EventCommit, SHA256: sum(s)}
	}
	seg := func(n int, s byte) Line {
		return Line{Kind: KindChain, Name: "publish", Seq: n, Event: EventCommit, SHA256: sum(s)}
	}
	rollback := func(n int, s byte) Line {
		return Line{Kind: KindChain, Name: "publish", Seq: n, Event: EventRollback, SHA256: sum(s)}
	}
	cases := []struct {
		name       string
		lines      []Line
		want       []Line
		conflicts  int
		duplicates int
	}{
		{"each commit once", []Line{seg(1, 'a'), ds("dt=2026-11-01", 'b'), seg(2, 'c')},
			[]Line{seg(1, 'a'), ds("dt=2026-11-01", 'b'), seg(2, 'c')}, 0, 0},
		{"a restart repeats the heads exactly", []Line{seg(1, 'a'), ds("dt=2026-11-01", 'b'), seg(1, 'a'), ds("dt=2026-11-01", 'b')},
			[]Line{seg(1, 'a'), ds("dt=2026-11-01", 'b')}, 0, 2},
		{"a window anchored with two hashes", []Line{ds("dt=2026-11-01", 'b'), ds("dt=2026-11-01", 'x')},
			[]Line{ds("dt=2026-11-01", 'b')}, 1, 0},
		{"a segment anchored with two hashes", []Line{seg(1, 'a'), seg(2, 'c'), seg(2, 'x')},
			[]Line{seg(1, 'a'), seg(2, 'c')}, 1, 0},
		{"a rollback withdraws the segments after it", []Line{seg(1, 'a'), seg(2, 'c'), seg(3, 'd'), rollback(1, 'a'), seg(2, 'x')},
			[]Line{seg(1, 'a'), seg(2, 'x')}, 0, 0},
		{"a rollback to nothing", []Line{seg(1, 'a'), {Kind: KindChain, Name: "publish", Event: EventRollback}, seg(1, 'x')},
			[]Line{seg(1, 'x')}, 0, 0},
		// A writer fenced off the chain wrote segment 2 at 10 s; its
		// anchor reached the log after the new owner's rollback (20 s).
		{"a fenced writer's commit that arrives after the rollback withdrawing it", []Line{seg(1, 'a'),
			at(rollback(1, 'a'), 20), at(seg(2, 'x'), 21), at(seg(2, 'c'), 10)},
			[]Line{seg(1, 'a'), at(seg(2, 'x'), 21)}, 0, 0},
		{"a commit after a rollback, newer than it, is no late one", []Line{seg(1, 'a'),
			at(rollback(1, 'a'), 20), at(seg(2, 'x'), 21), at(seg(2, 'c'), 22)},
			[]Line{seg(1, 'a'), at(seg(2, 'x'), 21)}, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := Expect(c.lines)
			if diff := cmp.Diff(c.want, e.Lines); diff != "" {
				t.Errorf("expected (-want +got):\n%s", diff)
			}
			if len(e.Conflicts) != c.conflicts || e.Duplicates != c.duplicates {
				t.Errorf("conflicts %v, duplicates %d; want %d and %d", e.Conflicts, e.Duplicates, c.conflicts, c.duplicates)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	must(t, os.MkdirAll(out, 0o755))
	must(t, os.Symlink(out, filepath.Join(dir, "link")))
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no anchors", Config{}, ""},
		{"a file beside the output", Config{File: filepath.Join(dir, "anchors.ndjson")}, ""},
		{"a file inside the output", Config{File: filepath.Join(out, "anchors.ndjson")}, "is inside the output directory"},
		{"a file inside the output through a link", Config{File: filepath.Join(dir, "link", "x", "anchors.ndjson")}, "is inside the output directory"},
		{"a file in a directory named like the output", Config{File: out + "-anchors/a.ndjson"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate(out)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "anchors.file: ")):
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
