package parquet

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestReadingAMalformedFileIsAnErrorNotAPanic flips each byte of a data
// file's footer in turn: reading the result may fail, but never panics
// (verify reads files that may have been tampered with, and must report
// them rather than crash).
func TestReadingAMalformedFileIsAnErrorNotAPanic(t *testing.T) {
	s, _ := newSink(t)
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(dataFile(t, s, out))
	if err != nil {
		t.Fatal(err)
	}
	footer := int(binary.LittleEndian.Uint32(good[len(good)-8:]))
	// The Arrow schema stored in the key-value metadata is left alone:
	// arrow-go allocates whatever a corrupt one claims, which no reader
	// above it can bound (the manifest's SHA-256 catches such an edit).
	meta, err := ReadMetadata(dataFile(t, s, out))
	if err != nil {
		t.Fatal(err)
	}
	schemaAt := bytes.Index(good, []byte(meta["ARROW:schema"]))
	if schemaAt < 0 {
		t.Fatal("the stored Arrow schema is not in the footer")
	}
	path := filepath.Join(t.TempDir(), "part-0.parquet")
	failed := 0
	for i := len(good) - 8 - footer; i < len(good)-8; i++ {
		if i >= schemaAt && i < schemaAt+len(meta["ARROW:schema"]) {
			continue
		}
		b := append([]byte(nil), good...)
		b[i] ^= 0x20
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("byte %d of the footer flipped: reading panics: %v", i, p)
				}
			}()
			if _, err := ReadRows(path); err != nil {
				failed++
			}
			if rdr, err := OpenFile(path); err == nil {
				rdr.Close()
			}
			_, _ = ReadMetadata(path)
		}()
	}
	if failed == 0 {
		t.Errorf("no flipped byte of the %d-byte footer made the file unreadable: this test could not fail", footer)
	}
}
