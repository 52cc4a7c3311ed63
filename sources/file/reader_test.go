package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"

	"github.com/mya/deid/pipeline"
)

// line is a record as the tests compare it: offset, value, malformed code.
type line struct {
	Off  int64
	Val  string
	Code string
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testConfig(maxLine int) Config {
	c := DefaultConfig()
	if maxLine > 0 {
		c.MaxLineBytes = maxLine
	}
	return c
}

// readAll reads r to its end, copying every record out of the reused buffers.
func readAll(t testing.TB, r *Reader) ([]line, error) {
	t.Helper()
	var out []line
	for {
		batch, err := r.Next(context.Background())
		for _, rec := range batch {
			l := line{Off: rec.Pos.Offset, Val: string(rec.Value)}
			if rec.Err != nil {
				l.Code = rec.Err.Code
			}
			if rec.Pos.Source != r.ID().Source || rec.Pos.Partition != 0 {
				t.Errorf("record %d: position %s, want source %s partition 0", rec.Pos.Offset, rec.Pos, r.ID().Source)
			}
			out = append(out, l)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestLinesBecomeRecordsInOrderPlainOrGzip(t *testing.T) {
	tests := []struct {
		name    string
		content string
		maxLine int
		want    []line
	}{
		{"a final newline does not start another line", "{\"a\":1}\n{\"b\":2}\n", 0,
			[]line{{1, `{"a":1}`, ""}, {2, `{"b":2}`, ""}}},
		{"a last line without newline is still a line", "{\"a\":1}\n{\"b\":2}", 0,
			[]line{{1, `{"a":1}`, ""}, {2, `{"b":2}`, ""}}},
		{"an empty file has no records", "", 0, nil},
		{"a lone newline is one blank line", "\n", 0, []line{{1, "", "empty_record"}}},
		{"blank lines are records marked empty_record", "{}\n\n  \t\n{}\n\n", 0,
			[]line{{1, "{}", ""}, {2, "", "empty_record"}, {3, "  \t", "empty_record"}, {4, "{}", ""}, {5, "", "empty_record"}}},
		{"CRLF line endings lose their CR", "{\"a\":1}\r\n\r\n{\"b\":2}\r", 0,
			[]line{{1, `{"a":1}`, ""}, {2, "", "empty_record"}, {3, `{"b":2}`, ""}}},
		{"a line over the limit is cut and marked, the next one is read", "0123456789abcdef\nshort\n", 10,
			[]line{{1, "0123456789", "too_long"}, {2, "short", ""}}},
		{"a line exactly at the limit is whole, with or without CR", "0123456789\r\n0123456789\n", 10,
			[]line{{1, "0123456789", ""}, {2, "0123456789", ""}}},
		{"a long last line without newline is cut", "ok\n0123456789abc", 10,
			[]line{{1, "ok", ""}, {2, "0123456789", "too_long"}}},
		{"a byte-order mark at the start is dropped", "\xef\xbb\xbf{}\n{}\n", 0,
			[]line{{1, "{}", ""}, {2, "{}", ""}}},
	}
	for _, tt := range tests {
		for _, compressed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", tt.name, compressed), func(t *testing.T) {
				data := []byte(tt.content)
				if compressed {
					data = gz(t, data)
				}
				p := writeFile(t, t.TempDir(), "events.ndjson", data)
				r, err := OpenFile(p, testConfig(tt.maxLine))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				got, err := readAll(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestTooLongLineNamesItsLengthAndTheSetting(t *testing.T) {
	// Longer than the read buffer, so the line arrives in several pieces.
	long := strings.Repeat("x", 3*readBufferSize+17)
	p := writeFile(t, t.TempDir(), "e.ndjson", []byte("{}\n"+long+"\r\n{}\n"))
	r, err := OpenFile(p, testConfig(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	batch, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 3 {
		t.Fatalf("got %d records, want 3", len(batch))
	}
	rec := batch[1]
	if rec.Err == nil || rec.Err.Code != "too_long" || len(rec.Value) != 1000 {
		t.Fatalf("record 2: err %v, %d bytes; want too_long with the first 1000 bytes", rec.Err, len(rec.Value))
	}
	want := fmt.Sprintf("line of %d bytes exceeds the limit of 1000 bytes; raise input.max_line_bytes", len(long))
	if rec.Err.Detail != want {
		t.Errorf("detail = %q, want %q", rec.Err.Detail, want)
	}
	if batch[2].Err != nil || string(batch[2].Value) != "{}" || batch[2].Pos.Offset != 3 {
		t.Errorf("record after the long line = %+v, want line 3 {}", batch[2])
	}
}

func TestGzipIsDetectedByMagicBytesNotByName(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"gzip-named-plain.ndjson":    gz(t, []byte("{}\n")),
		"plain-named-gzip.ndjson.gz": []byte("{}\n"),
		"two-gzip-members.ndjson.gz": append(gz(t, []byte("{}\n")), gz(t, []byte("[]\n"))...),
	}
	want := map[string][]line{
		"gzip-named-plain.ndjson":    {{1, "{}", ""}},
		"plain-named-gzip.ndjson.gz": {{1, "{}", ""}},
		"two-gzip-members.ndjson.gz": {{1, "{}", ""}, {2, "[]", ""}},
	}
	for name, data := range cases {
		r, err := OpenFile(writeFile(t, dir, name, data), DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		r.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want[name], got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func numbered(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("p", i%50))
	}
	return b.Bytes()
}

func TestCorruptGzipNamesTheFileAndTheLineReached(t *testing.T) {
	data := gz(t, numbered(5000))
	dir := t.TempDir()
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0xff
	for name, content := range map[string][]byte{
		"truncated.ndjson.gz":  data[:len(data)*2/3],
		"flipped.ndjson.gz":    flipped,
		"no-trailer.ndjson.gz": data[:len(data)-4],
	} {
		p := writeFile(t, dir, name, content)
		r, err := OpenFile(p, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		r.Close()
		if err == nil {
			t.Errorf("%s: read %d records and no error, want an error", name, len(got))
			continue
		}
		want := fmt.Sprintf("file: %s: gzip stream is corrupt or truncated after line %d:", p, len(got))
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to contain %q", name, err, want)
		}
		if name == "flipped.ndjson.gz" {
			// Deflate may put out damaged bytes before the CRC at the end of
			// the member finds them: only the error is certain.
			continue
		}
		for i, l := range got {
			if l.Off != int64(i+1) || l.Code != "" || !strings.HasPrefix(l.Val, fmt.Sprintf(`{"n":%d,`, i+1)) {
				t.Errorf("%s: record %d = %+v: a record before the failure is not a whole line", name, i, l)
				break
			}
		}
	}
}

func TestBatchesAreBoundedAndTheirBuffersReused(t *testing.T) {
	p := writeFile(t, t.TempDir(), "e.ndjson", numbered(7))
	cfg := DefaultConfig()
	cfg.BatchSize = 3
	r, err := OpenFile(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sizes []int
	var firstValue []byte
	for {
		batch, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			if len(batch) != 0 {
				t.Errorf("io.EOF came with %d records", len(batch))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if firstValue == nil {
			firstValue = batch[0].Value
			if string(firstValue) != `{"n":1,"pad":"p"}` {
				t.Fatalf("first record = %q", firstValue)
			}
		} else {
			// Documented: a batch stays valid while the next one is read,
			// and the one after reuses its buffers.
			switch len(sizes) {
			case 1:
				if string(firstValue) != `{"n":1,"pad":"p"}` {
					t.Errorf("reading the second batch overwrote the first: %q", firstValue)
				}
				if &firstValue[0] == &batch[0].Value[0] {
					t.Error("the second batch reuses the first batch's arena while the first is still valid")
				}
			case 2:
				if &firstValue[0] != &batch[0].Value[0] {
					t.Error("the third batch did not reuse the first batch's arena")
				}
			}
		}
		if c := cap(batch[0].Value); c != len(batch[0].Value) {
			t.Errorf("a Value has spare capacity %d: appending to it would overwrite the next record", c)
		}
		sizes = append(sizes, len(batch))
	}
	if diff := cmp.Diff([]int{3, 3, 1}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if _, err := r.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v, want io.EOF again", err)
	}
}

func TestSteadyStateReadingDoesNotAllocate(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		data := numbered(200_000)
		if compressed {
			data = gz(t, data)
		}
		p := writeFile(t, t.TempDir(), "e.ndjson", data)
		cfg := DefaultConfig()
		cfg.BatchSize = 100
		r, err := OpenFile(p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 { // grow the buffers
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(500, func() {
			if _, err := r.Next(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		r.Close()
		if allocs != 0 {
			t.Errorf("gzip=%v: %.1f allocations per batch, want 0", compressed, allocs)
		}
	}
}

func TestSeekLineResumesAfterACheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "e.ndjson.gz", gz(t, numbered(10)))
	cfg := DefaultConfig()
	cfg.BatchSize = 4

	open := func(next int64) *Reader {
		r, err := OpenFile(p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if err := r.SeekLine(next); err != nil {
			t.Fatal(err)
		}
		return r
	}
	got, err := readAll(t, open(8))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Off != 8 || got[2].Off != 10 {
		t.Errorf("resumed at line 8: got %+v, want lines 8-10", got)
	}
	if got, err := readAll(t, open(11)); err != nil || len(got) != 0 {
		t.Errorf("resumed just past the end: %d records, %v; want none and io.EOF", len(got), err)
	}
	_, err = readAll(t, open(12))
	if err == nil || !strings.Contains(err.Error(), "cannot resume at line 12: the file has only 10 lines") {
		t.Errorf("resumed beyond the end: %v, want an error saying the file changed", err)
	}

	r := open(1)
	if _, err := r.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.SeekLine(9); err == nil {
		t.Error("SeekLine after reading started succeeded, want an error")
	}
	if err := r.SeekLine(0); err == nil {
		t.Error("SeekLine(0) succeeded, want an error")
	}
}

func TestSourceOpenResumesEachPartition(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.ndjson", numbered(5))
	writeFile(t, dir, "b.ndjson", numbered(5))
	s, err := New(Config{Paths: []string{dir}, BatchSize: 10, MaxLineBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	readers, err := s.Open(context.Background(), func(id pipeline.PartitionID) (int64, bool) {
		return 4, id.Source == "b.ndjson"
	})
	if err != nil {
		t.Fatal(err)
	}
	var first []string
	for _, r := range readers {
		batch, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, batch[0].Pos.String())
		r.Close()
	}
	if diff := cmp.Diff([]string{"a.ndjson[0]@1", "b.ndjson[0]@4"}, first); diff != "" {
		t.Errorf("first positions (-want +got):\n%s", diff)
	}
}

func TestNextHonoursContextAndClose(t *testing.T) {
	p := writeFile(t, t.TempDir(), "e.ndjson", numbered(3))
	r, err := OpenFile(p, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context = %v, want context.Canceled", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := r.Next(context.Background()); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("Next after Close = %v, want an error", err)
	}
}
