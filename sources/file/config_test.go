package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tree makes files (and their directories) under a fresh temporary directory.
func tree(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPathsExpandToSortedInputFiles(t *testing.T) {
	dir := tree(t, "in/b.ndjson", "in/a.ndjson.gz", "in/c.jsonl", "in/d.jsonl.gz", "in/notes.txt",
		"in/.hidden.ndjson", "in/settings.ndjson", "in/sub/e.ndjson", "other/x.ndjson", "other/y.ndjson",
		"globbed/part-1", "globbed/part-2")
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"a directory yields its input files, not hidden, other or settings files nor subdirectories",
			[]string{"in"}, []string{"in/a.ndjson.gz", "in/b.ndjson", "in/c.jsonl", "in/d.jsonl.gz"}},
		{"a file named explicitly is read even if excluded",
			[]string{"in/settings.ndjson"}, []string{"in/settings.ndjson"}},
		{"a glob yields what it matches, whatever the suffix",
			[]string{"globbed/part-*"}, []string{"globbed/part-1", "globbed/part-2"}},
		{"several paths are merged and sorted by base name",
			[]string{"other", "in/b.ndjson"}, []string{"in/b.ndjson", "other/x.ndjson", "other/y.ndjson"}},
		{"a file mentioned twice is read once",
			[]string{"other", "other/x.ndjson", "./other/x.ndjson"}, []string{"other/x.ndjson", "other/y.ndjson"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			for _, p := range tt.paths {
				cfg.Paths = append(cfg.Paths, filepath.Join(dir, p))
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range s.Files() {
				rel, _ := filepath.Rel(dir, f)
				got = append(got, rel)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadConfigsAreReportedAllAtOnceWithTheirFix(t *testing.T) {
	dir := tree(t, "a/events.ndjson", "b/events.ndjson", "empty/readme.txt")
	in := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no paths", Config{BatchSize: 1, MaxLineBytes: 1},
			[]string{"input.paths: no input given; set input.paths or pass --input"}},
		{"a glob matching nothing", Config{Paths: []string{in("x/*.ndjson")}, BatchSize: 1, MaxLineBytes: 1},
			[]string{`input.paths: no input files matched "` + in("x/*.ndjson") + `"; check the path`}},
		{"a missing file", Config{Paths: []string{in("nope.ndjson")}, BatchSize: 1, MaxLineBytes: 1},
			[]string{`input.paths: "` + in("nope.ndjson") + `" does not exist; check the path`}},
		{"a directory without input files", Config{Paths: []string{in("empty")}, BatchSize: 1, MaxLineBytes: 1},
			[]string{`input.paths: directory "` + in("empty") + `" holds no *.ndjson, *.ndjson.gz, *.jsonl, *.jsonl.gz files; check the path`}},
		{"two files with one base name", Config{Paths: []string{in("a"), in("b")}, BatchSize: 1, MaxLineBytes: 1},
			[]string{`input.paths: "` + in("a/events.ndjson") + `" and "` + in("b/events.ndjson") + `" share the name "events.ndjson", which names the partition; rename one of them`}},
		{"every problem at once", Config{Paths: []string{in("nope"), in("a")}, Exclude: []string{"["}},
			[]string{
				"input.batch_size: must be between 1 and 1048576 (got 0)",
				"input.max_line_bytes: must be between 1 and 268435456 (got 0)",
				`input.exclude: bad pattern "[": syntax error in pattern`,
				`input.paths: "` + in("nope") + `" does not exist; check the path`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Error("New succeeded on a bad config")
			}
		})
	}
	if err := (Config{Paths: []string{in("a")}, BatchSize: 1, MaxLineBytes: 1}).Validate(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestPartitionsAreNamedByBaseNameAndProgressIsCounted(t *testing.T) {
	dir := tree(t, "b.ndjson", "a.ndjson")
	cfg := DefaultConfig()
	cfg.Paths = []string{dir}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	readers, err := s.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range readers {
		ids = append(ids, r.ID().String())
		if _, err := readAll(t, r.(*Reader)); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	if diff := cmp.Diff([]string{"a.ndjson[0]", "b.ndjson[0]"}, ids); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	if done, total := s.Progress(); done != total || total != 6 {
		t.Errorf("progress = %d of %d, want 6 of 6", done, total)
	}
}

func TestOpeningFailsWholeWhenAFileVanishes(t *testing.T) {
	dir := tree(t, "a.ndjson", "b.ndjson")
	s, err := New(Config{Paths: []string{dir}, BatchSize: 1, MaxLineBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "b.ndjson"))
	if rs, err := s.Open(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "b.ndjson") {
		t.Errorf("Partitions = %d readers, %v; want an error naming b.ndjson", len(rs), err)
	}
}
