package deadletter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/pipeline"
)

var part = pipeline.PartitionID{Source: "events-00.ndjson"}

// newSink returns a sink on a fresh output directory; cfg, when given,
// sets what is not the directory.
func newSink(t *testing.T, cfg ...any) (*Sink, string) {
	t.Helper()
	dir := t.TempDir()
	c := Config{}
	var opts []Option
	for _, x := range cfg {
		switch x := x.(type) {
		case Config:
			c = x
		case Option:
			opts = append(opts, x)
		}
	}
	c.Dir = dir
	s, err := New(c, opts...)
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

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestDeadLettersKeepLengthAndHashNotBytesByDefault(t *testing.T) {
	s, out := newSink(t)
	w := open(t, s, part)
	values := [][]byte{
		[]byte(`{"event_id":"e1","event_type":"message.direct","workspace_id":"w1","payload":{"body":"Hi Jane, call me at +1 415 555 0134"}`),
		[]byte(`{"event_id":"e2","event_type":"campaign.metrics","workspace_id":"w1","payload":{"caption":"Glow up with my new serum","clicks":-1}}`),
		{0xff, 0xfe, 0x00, 0x01, '\n', '"', '\\'},
		{},
	}
	reasons := []*pipeline.MalformedError{
		pipeline.Malformed("invalid_json", "", "unexpected end of input"),
		pipeline.Malformed("negative_counter", "payload.clicks", "must not be negative"),
		pipeline.Malformed("invalid_json", "", "unexpected byte at offset 0"),
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
			Field: reasons[i].Field, Detail: reasons[i].Detail, Length: len(v), SHA256: sum(v)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters read back (-written +read):\n%s", diff)
	}

	// Each line is one JSON object with the documented keys, in order, and
	// nothing of the record.
	raw, err := os.ReadFile(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(raw, []byte("\n"))
	wantFirst := `{"source":"events-00.ndjson","partition":0,"offset":1,"reason":"invalid_json","field":"",` +
		`"detail":"unexpected end of input","length":` + fmt.Sprint(len(values[0])) + `,"sha256":"` + sum(values[0]) + `"}`
	if string(first) != wantFirst {
		t.Errorf("first line:\n%s\nwant:\n%s", first, wantFirst)
	}
	for _, secret := range []string{"Hi Jane", "serum", "value_base64", "payload_withheld", base64.StdEncoding.EncodeToString(values[0][:30])} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the dead letters hold %q", secret)
		}
	}
	if n := bytes.Count(raw, []byte("\n")); n != len(values) {
		t.Errorf("%d lines, want %d", n, len(values))
	}
}

// optedOut is the consent state of the tests: workspace "w-gone" is
// excluded, every other is not.
func optedOut(ws []byte) bool { return string(ws) == "w-gone" }

func TestKeepPayloadKeepsOnlyWhatItMay(t *testing.T) {
	const campaign = `{"event_id":"e1","event_type":"campaign.metrics","occurred_at":"2026-11-01T10:00:00Z","workspace_id":"w1","payload":{"clicks":-1}}`
	tests := []struct {
		name, in string
		// withheld is the reason expected, "" when the bytes are kept.
		withheld string
	}{
		{"an ordinary malformed record is kept", campaign, ""},
		{"a truncated ordinary record is kept", campaign[:len(campaign)-20], ""},
		{"a type only nested in the payload does not count", `{"event_type":"campaign.metrics","workspace_id":"w1","payload":{"event_type":"message.direct"}}`, ""},
		{"a malformed direct message is withheld", `{"event_type":"message.direct","workspace_id":"w1","payload":{"body":"call me"},"x":}`, WithheldMessageType},
		{"a well-formed message with a future timestamp is withheld", `{"event_id":"e","event_type":"message.sms","occurred_at":"2099-01-01T00:00:00Z","workspace_id":"w1","payload":{}}`, WithheldMessageType},
		{"a support message is withheld", `{"workspace_id":"w1","event_type":"support.message","payload":{"body":"x"}`, WithheldMessageType},
		{"a message type in another case is withheld", `{"event_type":"MESSAGE.Email","workspace_id":"w1"}`, WithheldMessageType},
		{"an escaped key naming a message is withheld", `{"event\u005ftype":"message.imessage","workspace_id":"w1"}`, WithheldMessageType},
		{"a repeated event_type naming a message is withheld", `{"event_type":"campaign.metrics","workspace_id":"w1","event_type":"message.direct"}`, WithheldMessageType},
		{"a record of an opted-out workspace is withheld", `{"event_type":"campaign.metrics","workspace_id":"w-gone","payload":{"clicks":-1}}`, WithheldExcludedWorkspace},
		{"a repeated workspace_id naming an excluded one is withheld", `{"event_type":"campaign.metrics","workspace_id":"w1","workspace_id":"w-gone"}`, WithheldExcludedWorkspace},
		{"a totally broken line is withheld", "\xff\x00 Hi Jane, call me", WithheldUnreadable},
		{"a record that is not an object is withheld", `["message.direct","w1"]`, WithheldUnreadable},
		{"a record without workspace_id is withheld", `{"event_type":"campaign.metrics","payload":{}}`, WithheldUnreadable},
		{"a record without event_type is withheld", `{"workspace_id":"w1","payload":{"body":"call me"}}`, WithheldUnreadable},
		{"a non-string event_type is withheld", `{"event_type":7,"workspace_id":"w1"}`, WithheldUnreadable},
		{"an empty workspace_id is withheld", `{"event_type":"campaign.metrics","workspace_id":""}`, WithheldUnreadable},
		{"a record truncated inside its event_type is withheld", `{"workspace_id":"w1","event_type":"messa`, WithheldUnreadable},
		{"a record broken before its end is withheld", `{"event_type":"campaign.metrics","workspace_id":"w1","x":"a" "event_type":"message.direct"}`, WithheldUnreadable},
		{"data after the record is withheld", `{"event_type":"campaign.metrics","workspace_id":"w1"} {"event_type":"message.direct"}`, WithheldUnreadable},
		{"an empty record is withheld", ``, WithheldUnreadable},
	}
	s, out := newSink(t, Config{KeepPayload: true}, WithExcluded(optedOut))
	w := open(t, s, part)
	buf := make([]byte, 0, 256)
	for i, tt := range tests {
		buf = append(buf[:0], tt.in...)
		if err := w.Write(rec(part, int64(i+1), buf), pipeline.Malformed("invalid_json", "", "unexpected end of input")); err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 'X'
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadAll(Path(out, part))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(tests) {
		t.Fatalf("%d dead letters, want %d", len(lines), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lines[i]
			if l.PayloadWithheld != tt.withheld {
				t.Errorf("payload_withheld %q, want %q", l.PayloadWithheld, tt.withheld)
			}
			var want []byte
			if tt.withheld == "" {
				want = []byte(tt.in)
			}
			if !bytes.Equal(l.Value, want) {
				t.Errorf("kept %q, want %q", l.Value, want)
			}
			if l.Length != len(tt.in) || l.SHA256 != sum([]byte(tt.in)) {
				t.Errorf("length %d sha256 %s, want %d %s", l.Length, l.SHA256, len(tt.in), sum([]byte(tt.in)))
			}
		})
	}
}

func TestKeepPayloadNeedsTheConsentState(t *testing.T) {
	_, err := New(Config{Dir: t.TempDir(), KeepPayload: true})
	if err == nil || !strings.HasPrefix(err.Error(), "dead_letters.keep_payload: ") {
		t.Errorf("New with keep_payload and no consent state = %v, want an error naming dead_letters.keep_payload", err)
	}
	// The zero Retention keeps nothing, whatever it is asked.
	l := Retention{KeepPayload: true}.Letter(rec(part, 1, []byte(`{"event_type":"campaign.metrics","workspace_id":"w1"}`)), nil)
	if l.Value != nil || l.PayloadWithheld != WithheldExcludedWorkspace {
		t.Errorf("without consent state: kept %q, withheld %q", l.Value, l.PayloadWithheld)
	}
}

func TestDetailsThatQuoteTheRecordAreWithheld(t *testing.T) {
	record := []byte(`{"event_type":"campaign.metrics","payload":{"clicks":"call me at +1 415 555 0134"}}`)
	tests := []struct {
		name, field, detail string
		want                Line
	}{
		{"a detail naming the rule is kept", "payload.clicks", "must be an integer",
			Line{Field: "payload.clicks", Detail: "must be an integer"}},
		{"a detail quoting the value is withheld", "payload.clicks", `invalid value "call me at +1 415 555 0134"`,
			Line{Field: "payload.clicks", Detail: QuotedWithheld}},
		{"a detail quoting twelve bytes is withheld", "", `unexpected ":"call me at`,
			Line{Detail: QuotedWithheld}},
		{"a field that quotes is withheld too", `payload.clicks":"call me`, "must be an integer",
			Line{Field: QuotedWithheld, Detail: "must be an integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Retention{}.Letter(rec(part, 1, record), pipeline.Malformed("wrong_type", tt.field, "%s", tt.detail))
			if l.Field != tt.want.Field || l.Detail != tt.want.Detail {
				t.Errorf("field %q detail %q, want %q %q", l.Field, l.Detail, tt.want.Field, tt.want.Detail)
			}
		})
	}
}

func TestLongDetailsAreShortened(t *testing.T) {
	l := Retention{}.Letter(rec(part, 1, nil), pipeline.Malformed("too_long", "", "%s", strings.Repeat("é", 300)))
	if len(l.Detail) > maxDetail+len("…") || !utf8.ValidString(l.Detail) || !strings.HasSuffix(l.Detail, "…") {
		t.Errorf("detail of %d bytes: %q", len(l.Detail), l.Detail)
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
		if v := []byte(fmt.Sprint(l.Offset)); l.SHA256 != sum(v) || l.Length != len(v) {
			t.Errorf("offset %d has the length and hash of another record", l.Offset)
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
	s, out := newSink(t, Config{KeepPayload: true}, WithExcluded(optedOut))
	w := open(t, s, part)
	// Kept records make lines longer than the tail reader's chunk.
	big := []byte(`{"event_type":"campaign.metrics","workspace_id":"w1","x":"` + strings.Repeat("x", 200<<10) + `"}`)
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
	if lines, err := ReadAll(Path(out, part)); err != nil || len(lines) != 3 || !bytes.Equal(lines[2].Value, big) {
		t.Fatalf("%d lines, %v: want 3 long ones", len(lines), err)
	}
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
			v := []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, i))
			if l.SHA256 != sum(v) || l.Partition != int32(p) || l.Offset != int64(i) {
				t.Errorf("partition %d line %d: %+v is not of %s", p, i, l, v)
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
