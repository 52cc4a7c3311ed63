package gen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/sources/file"
)

func TestWriteFilesWritesOneFilePerPartitionAndTheSettings(t *testing.T) {
	dir := t.TempDir()
	// A stale file of an earlier, bigger run is removed; other files stay.
	os.WriteFile(filepath.Join(dir, "events-07.ndjson"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)

	cfg := smallConfig(8_000)
	cfg.Gzip = true
	st, err := WriteFiles(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"events-00.ndjson.gz", "events-01.ndjson.gz", "events-02.ndjson.gz", "events-03.ndjson.gz", "notes.txt", "settings.ndjson"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	settings, _ := os.ReadFile(filepath.Join(dir, SettingsFileName))
	if n := bytes.Count(settings, []byte("\n")); int64(n) != st.Settings.Lines || settings[0] != '{' {
		t.Errorf("settings file: %d lines, want %d, uncompressed", n, st.Settings.Lines)
	}

	// Read back through the file source: every line, in its partition.
	fcfg := file.DefaultConfig()
	fcfg.Paths = []string{dir}
	src, err := file.New(fcfg)
	if err != nil {
		t.Fatal(err)
	}
	readers, err := src.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range readers {
		if r.ID().Source != EventsFileName(p, true) {
			t.Errorf("partition %d is %s", p, r.ID())
		}
		var lines, bytes int64
		for {
			batch, err := r.Next(context.Background())
			for _, rec := range batch {
				if rec.Err != nil {
					t.Errorf("%s: %v", rec.Pos, rec.Err)
				}
				lines++
				bytes += int64(len(rec.Value))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if lines != st.Partitions[p].Lines || bytes != st.Partitions[p].Bytes {
			t.Errorf("%s: read %d lines %d bytes, Stats says %d lines %d bytes", r.ID(), lines, bytes, st.Partitions[p].Lines, st.Partitions[p].Bytes)
		}
	}

	// The same config again: byte-identical files, compressed or not.
	again := t.TempDir()
	if _, err := WriteFiles(again, cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range want {
		if n == "notes.txt" {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(dir, n))
		b, _ := os.ReadFile(filepath.Join(again, n))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs of one config", n)
		}
	}
}

func TestWriteFilesLeavesNoTemporaryFileOnError(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(10)
	cfg.Partitions = 0
	if _, err := WriteFiles(dir, cfg); err == nil {
		t.Fatal("WriteFiles accepted a bad config")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
	names := []string{EventsFileName(3, false), EventsFileName(12, true)}
	if !slices.Equal(names, []string{"events-03.ndjson", "events-12.ndjson.gz"}) {
		t.Errorf("EventsFileName = %v", names)
	}
}
