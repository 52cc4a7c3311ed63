package deadletter

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// TestOnAStoreTheFileIsTheSameBytesAndAReplayIsNotWrittenTwice writes the
// same dead letters, in two flushes and across a reopen that replays some,
// to a directory and through a store (each flush stores the whole file
// again), and expects the same bytes under the same name.
func TestOnAStoreTheFileIsTheSameBytesAndAReplayIsNotWrittenTwice(t *testing.T) {
	st, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reason := pipeline.Malformed("invalid_json", "", "unexpected end of input")
	run := func(s *Sink) {
		w := open(t, s, part)
		for off := int64(1); off <= 3; off++ {
			if err := w.Write(rec(part, off, []byte(`{"x":`)), reason); err != nil {
				t.Fatal(err)
			}
			if off == 2 {
				if err := w.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// A restart replays offsets 2–3 and goes on to 5.
		w = open(t, s, part)
		for off := int64(2); off <= 5; off++ {
			if err := w.Write(rec(part, off, []byte(`{"y":`)), reason); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	local, dir := newSink(t)
	run(local)
	onStore, err := New(Config{Dir: st.String()}, WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	run(onStore)
	want, err := os.ReadFile(Path(dir, part))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(Path(st.String(), part))
	if err != nil {
		t.Fatalf("the store holds no dead-letter file under the directory's name: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("through the store:\n%s\nin the directory:\n%s", got, want)
	}
	if lines, err := ReadAll(Path(st.String(), part)); err != nil || len(lines) != 5 {
		t.Errorf("%d lines (%v), want 5: one per offset", len(lines), err)
	}
}
