package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// --cpuprofile and --memprofile each write a pprof profile of the run: a
// gzipped protocol buffer naming its sample types.
func TestRunWritesProfiles(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "golden", "campaigns")
	tmp := t.TempDir()
	cpu, mem := filepath.Join(tmp, "cpu.prof"), filepath.Join(tmp, "mem.prof")
	deid(t, "run", "--input", filepath.Join(dir, "events.ndjson"), "--settings", filepath.Join(dir, "settings.ndjson"),
		"--out", filepath.Join(tmp, "out"), "--log-level", "error", "--cpuprofile", cpu, "--memprofile", mem)
	for path, sampleType := range map[string]string{cpu: "cpu", mem: "alloc_space"} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: not a gzipped profile: %v", filepath.Base(path), err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		}
		if !bytes.Contains(b, []byte(sampleType)) {
			t.Errorf("%s: the profile does not name the sample type %q", filepath.Base(path), sampleType)
		}
	}
}
