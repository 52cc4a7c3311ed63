package deadletter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

var part = pipeline.PartitionID{Source: "events-00.ndjson"}

func newSink(t *testing.T) (*Sink, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func open(t *testing.T, s *Sink, id pipeline.PartitionID) *Writer {
	t.Helper()
	w, err := s.Writer(id)
	if err != nil {
		t.Fatal(err)
	}
	return w.(*Writer)
}

func rec(id pipeline.PartitionID, off int64, v []byte) pipeline.Record {
	return pipeline.Record{Pos: pipeline.Position{Source: id.Source, Partition: id.Partition, Offset: off}, Value: v}
}

func TestRoundTripKeepsTheOriginalBytes(t *testing.T) {
	s, out := newSink(t)
	w := open(t, s, part)
	values := [][]byte{
		[]byte(`{"event_id": "e1", "payload": {"caption": "<b>hi</b> & \"bye\""}`),
		{0xff, 0xfe, 0x00, 0x01, '\n', '"', '\\'},
		[]byte("caf\xc3\x28 invalid utf-8"),
		{},
	}
	reasons := []*pipeline.MalformedError{
		pipeline.Malformed("missing_field", "workspace_id", "required"),
		pipeline.Malformed("invalid_json", "", "invalid character '\\xff' looking for beginning of value"),
		pipeline.Malformed("wrong_type", "occurred_at", "want a string, got \xc3\x28"),
		{Code: "invalid_json"},
	}
	// The caller reuses one buffer for every record.
	buf := make([]byte, 0, 256)
	for i, v := range values {
		buf = append(buf[:0], v...)
		if err := w.Write(rec(part, int64(i+1), buf), reasons[i]); err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 'X'
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	var want []Line
	for i, v := range values {
		want = append(want, Line{Source: "events-00.ndjson", Offset: int64(i + 1), Reason: reasons[i].Code,
			Field: reasons[i].Field, Detail: string(bytes.ToValidUTF8([]byte(reasons[i].Detail), []byte("\uFFFD"))), Value: v})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters read back (-written +read):\n%s", diff)
	}

	// Each line is one JSON object with the documented keys, in order.
	raw, err := os.ReadFile(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(raw, []byte("\n"))
	wantFirst := `{"source":"events-00.ndjson","partition":0,"offset":1,"reason":"missing_field","field":"workspace_id",` +
		`"detail":"required","value_base64":"` + base64.StdEncoding.EncodeToString(values[0]) + `"}`
	if string(first) != wantFirst {
		t.Errorf("first line:\n%s\nwant:\n%s", first, wantFirst)
	}
	if n := bytes.Count(raw, []byte("\n")); n != len(values) {
		t.Errorf("%d lines, want %d", n, len(values))
	}
}

func TestNothingIsInTheFileBeforeFlush(t *testing.T) {
	s, out := newSink(t)
	w := open(t, s, part)
	if err := w.Write(rec(part, 1, []byte("{")), pipeline.Malformed("invalid_json", "", "eof")); err != nil {
		t.Fatal(err)
	}
	if lines, err := ReadAll(Path(out, part)); err != nil || len(lines) != 0 {
		t.Fatalf("before Flush: %d lines, %v; want none", len(lines), err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lines, err := ReadAll(Path(out, part)); err != nil || len(lines) != 1 {
		t.Fatalf("after Flush: %d lines, %v; want 1", len(lines), err)
	}
	// A second Flush with nothing new changes nothing.
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Write(rec(part, 2, []byte("{")), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err == nil {
		t.Error("Flush with a cancelled context succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if lines, _ := ReadAll(Path(out, part)); len(lines) != 2 {
		t.Errorf("after Close: %d lines, want 2", len(lines))
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Write(rec(part, 3, nil), nil); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestReplayAfterRestartWritesNoDuplicates(t *testing.T) {
	s, out := newSink(t)
	reason := pipeline.Malformed("negative_counter", "clicks", "-1")
	w := open(t, s, part)
	for off := int64(1); off <= 5; off++ {
		if err := w.Write(rec(part, off, []byte(fmt.Sprint(off))), reason); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Offset 6 is buffered but never flushed: the crash loses it.
	if err := w.Write(rec(part, 6, []byte("6")), reason); err != nil {
		t.Fatal(err)
	}
	// And a flush that was cut short left half a line.
	f, err := os.OpenFile(Path(out, part), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"source":"events-00.ndjson","partition":0,"offset":6,"rea`)
	f.Close()

	// The restart replays from a checkpoint at offset 2.
	w2 := open(t, New2(t, out), part)
	for off := int64(3); off <= 8; off++ {
		if err := w2.Write(rec(part, off, []byte(fmt.Sprint(off))), reason); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadAll(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for _, l := range lines {
		offsets = append(offsets, l.Offset)
		if string(l.Value) != fmt.Sprint(l.Offset) {
			t.Errorf("offset %d holds %q", l.Offset, l.Value)
		}
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5, 6, 7, 8}, offsets); diff != "" {
		t.Errorf("offsets in the file (-want +got):\n%s", diff)
	}
}

// New2 opens a second sink on the same output, as a restarted process does.
func New2(t *testing.T, out string) *Sink {
	t.Helper()
	s, err := New(Config{Dir: out})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReopenFindsTheLastOffsetPastLongLines(t *testing.T) {
	s, out := newSink(t)
	w := open(t, s, part)
	big := bytes.Repeat([]byte("x"), 200<<10) // lines longer than the tail reader's chunk
	for off := int64(10); off <= 12; off++ {
		if err := w.Write(rec(part, off, big), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := open(t, New2(t, out), part)
	if w2.last != 12 {
		t.Errorf("reopened writer's last offset %d, want 12", w2.last)
	}
	w2.Close()
	// A file holding only a torn line is cut to nothing.
	if err := os.WriteFile(Path(out, part), []byte(`{"source":`), 0o600); err != nil {
		t.Fatal(err)
	}
	w3 := open(t, New2(t, out), part)
	w3.Close()
	if fi, _ := os.Stat(Path(out, part)); fi.Size() != 0 {
		t.Errorf("torn-only file is %d bytes after reopening", fi.Size())
	}
}

func TestConcurrentWritersOnDifferentPartitions(t *testing.T) {
	s, out := newSink(t)
	const parts, n = 8, 500
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := pipeline.PartitionID{Source: "events", Partition: int32(p)}
			w, err := s.Writer(id)
			if err != nil {
				t.Error(err)
				return
			}
			for off := range int64(n) {
				v := []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, off))
				if err := w.Write(rec(id, off, v), pipeline.Malformed("invalid_value", "x", "")); err != nil {
					t.Error(err)
				}
				if off%100 == 99 {
					if err := w.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for p := range parts {
		id := pipeline.PartitionID{Source: "events", Partition: int32(p)}
		lines, err := ReadAll(Path(out, id))
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != n {
			t.Errorf("partition %d: %d lines, want %d", p, len(lines), n)
		}
		for i, l := range lines {
			var v struct{ P, O int }
			if err := json.Unmarshal(l.Value, &v); err != nil || v.P != p || v.O != i || l.Partition != int32(p) {
				t.Errorf("partition %d line %d: %+v holds %s", p, i, l, l.Value)
				break
			}
		}
	}
}

func TestPathIsOneSafeFileName(t *testing.T) {
	got := Path("/out", pipeline.PartitionID{Source: "../in/events-00.ndjson.gz", Partition: 3})
	want := filepath.Join("/out", "dead-letters", "%2E.%2Fin%2Fevents-00.ndjson.gz%5B3%5D.ndjson")
	if got != want {
		t.Errorf("Path = %s, want %s", got, want)
	}
}

func TestFilesAreOwnerOnly(t *testing.T) {
	s, out := newSink(t)
	w := open(t, s, part)
	w.Close()
	fi, err := os.Stat(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("dead-letter file mode %v, want owner-only", perm)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || err.Error() != "out: must name the output directory (or pass --out)" {
		t.Errorf("Validate() = %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a directory succeeded")
	}
}
