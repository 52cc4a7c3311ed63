package anchors

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/sinks/objstore"
)

// TestAStoreLogKeepsEveryLineOfTwoWritersAndReadsAsAFile: two anchor logs
// on one store (two processes) append at once; no line replaces another
// (each object is created conditionally), and the store reads back as the
// file of the same lines would.
func TestAStoreLogKeepsEveryLineOfTwoWritersAndReadsAsAFile(t *testing.T) {
	st, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := OpenStore(ctx, st)
	must(t, err)
	b, err := OpenStore(ctx, st)
	must(t, err)
	var wg sync.WaitGroup
	for w, log := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 10; i++ {
				if err := log.Anchor(ctx, Line{Kind: KindChain, Name: []string{"a", "b"}[w], Seq: i, Event: EventCommit, SHA256: sum('a' + byte(w))}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lines, torn, err := ReadStore(ctx, st)
	must(t, err)
	if torn || len(lines) != 20 {
		t.Fatalf("%d lines (torn %v), want both writers' 20", len(lines), torn)
	}
	// The same lines as a file: one after another.
	path := filepath.Join(t.TempDir(), "anchors.ndjson")
	f, err := os.Create(path)
	must(t, err)
	must(t, CopyStore(ctx, st, f))
	must(t, f.Close())
	fromFile, _, err := ReadFile(path)
	must(t, err)
	if diff := cmp.Diff(lines, fromFile); diff != "" {
		t.Errorf("the store and its copy as a file differ (-store +file):\n%s", diff)
	}
	// A log opened later goes on after them.
	c, err := OpenStore(ctx, st)
	must(t, err)
	must(t, c.Anchor(ctx, Line{Kind: KindChain, Name: "c", Seq: 1, Event: EventCommit, SHA256: sum('c')}))
	lines, _, err = ReadStore(ctx, st)
	must(t, err)
	if len(lines) != 21 || lines[20].Name != "c" {
		t.Errorf("after a third log: %d lines, last %+v", len(lines), lines[len(lines)-1])
	}
}
