package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeNameIsSafeAndReversible(t *testing.T) {
	names := []string{"publish", "events-00.ndjson[0]", "events[12]", "../../etc/passwd", ".hidden", "a%5Bb",
		"a b\tc\x00d\xff", "ünïcødé[1]", "~tilde", strings.Repeat("long-topic-name.", 30) + "[7]", "-"}
	seen := map[string]string{}
	for _, n := range names {
		enc := EncodeName(n)
		if enc == "" || enc == "." || enc == ".." || strings.HasPrefix(enc, ".") || strings.ContainsAny(enc, "/\\[]*?\x00 ") {
			t.Errorf("EncodeName(%q) = %q is not a safe path element", n, enc)
		}
		if len(enc) > 255 {
			t.Errorf("EncodeName(%q) is %d bytes", n, len(enc))
		}
		if prev, dup := seen[enc]; dup {
			t.Errorf("EncodeName(%q) = EncodeName(%q) = %q", n, prev, enc)
		}
		seen[enc] = n
		dec, err := DecodeName(enc)
		if strings.Contains(enc, "~") {
			if err == nil {
				t.Errorf("DecodeName(%q) of a shortened name succeeded", enc)
			}
			continue
		}
		if err != nil || dec != n {
			t.Errorf("DecodeName(EncodeName(%q)) = %q, %v", n, dec, err)
		}
	}
	for _, bad := range []string{"a%5", "a%zz", "a%2fb", "%41"} {
		if _, err := DecodeName(bad); err == nil {
			t.Errorf("DecodeName(%q) succeeded on a non-canonical encoding", bad)
		}
	}
}

func FuzzEncodeName(f *testing.F) {
	// Invariants: the encoding is one safe path element, and decodes back
	// to the name unless it was shortened.
	for _, s := range []string{"publish", "events-00.ndjson[0]", "../x", "%", "~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		enc := EncodeName(name)
		if strings.ContainsAny(enc, "/\x00") || strings.HasPrefix(enc, ".") || len(enc) > 255 {
			t.Fatalf("EncodeName(%q) = %q", name, enc)
		}
		if name != "" && enc == "" {
			t.Fatalf("EncodeName(%q) is empty", name)
		}
		if !strings.Contains(enc, "~") {
			if dec, err := DecodeName(enc); err != nil || dec != name {
				t.Fatalf("DecodeName(%q) = %q, %v; want %q", enc, dec, err, name)
			}
		}
	})
}

func TestPublishNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) *File {
		f, err := Create(dir, "x", 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := write("first")
	if err := a.Publish("name"); err != nil {
		t.Fatal(err)
	}
	if !a.Placed() {
		t.Error("published file is not Placed")
	}
	b := write("second")
	err := b.Publish("name")
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Publish: %v, want fs.ErrExist", err)
	}
	b.Abort()
	if b.Placed() {
		t.Error("refused file is Placed")
	}
	got, _ := os.ReadFile(filepath.Join(dir, "name"))
	if string(got) != "first" {
		t.Errorf("published file holds %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries left, want only the published file", len(ents))
	}
	if a.SHA256() != "a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e" || a.Size() != 5 {
		t.Errorf("hash %s size %d", a.SHA256(), a.Size())
	}
}

func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("second MkdirAll: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(root, "file", "x"), 0o755); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}
}
