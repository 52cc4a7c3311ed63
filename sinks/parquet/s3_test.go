package parquet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// TestTwoWritersRacingOnOneWindowOnS3CommitItOnce: sinks of two processes
// on one s3:// output commit the same window at the same moment, each
// having seen no manifest; the manifest's conditional create (If-None-Match)
// lets exactly one commit it, and the other is told the window was
// committed by another writer, its own data file left only if the winner's
// manifest lists it.
func TestTwoWritersRacingOnOneWindowOnS3CommitItOnce(t *testing.T) {
	srv := s3test.Require(t)
	srv.Setenv(t)
	cfg := objstore.DefaultConfig()
	cfg.S3.Endpoint, cfg.S3.ForcePathStyle = srv.Endpoint, true
	cfg.S3.RequestTimeout, cfg.S3.RetryBudget = 20*time.Second, 20*time.Second
	url := "s3://" + srv.Bucket(t) + "/out"
	const writers = 4
	sinks := make([]*Sink, writers)
	// Every writer stops before its manifest until all are there (or
	// have failed before it, or 20 seconds have passed).
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	arrive := func() {
		mu.Lock()
		defer mu.Unlock()
		if arrived++; arrived == writers {
			close(all)
		}
	}
	for i := range sinks {
		st, err := objstore.NewS3(url, cfg)
		if err != nil {
			t.Fatal(err)
		}
		pc := DefaultConfig()
		pc.Dir = url
		if sinks[i], err = New(pc, WithStore(st)); err != nil {
			t.Fatal(err)
		}
		sinks[i].hook = func(step string) error {
			if step == "manifest" {
				arrive()
				select {
				case <-all:
				case <-time.After(20 * time.Second):
					return errors.New("the other writers did not reach their manifests within 20s")
				}
			}
			return nil
		}
	}
	out := testOutput(testRows())
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Commit(context.Background(), out)
			if errs[i] != nil && !errors.Is(errs[i], pipeline.ErrCommittedElsewhere) {
				arrive() // failed before its manifest: do not hold the others
			}
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, pipeline.ErrCommittedElsewhere) && strings.Contains(err.Error(), "window already committed by another writer"):
		default:
			t.Errorf("writer %d: %v, want success or ErrCommittedElsewhere", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers committed the window, want exactly 1", won)
	}
	st, _ := objstore.NewS3(url, cfg)
	infos, err := st.List(context.Background(), "datasets/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	// The same rows give the same data file: the winner's manifest lists
	// the file every writer wrote, and nothing else is there.
	if len(keys) != 2 || !strings.HasSuffix(keys[0], "/"+ManifestName) || !strings.HasSuffix(keys[1], ".parquet") {
		t.Errorf("objects %v, want one manifest and one data file", keys)
	}
	if ok, err := sinks[0].Published(out.Spec.Name, out.Window); !ok || err != nil {
		t.Errorf("Published: %v, %v", ok, err)
	}
}

// TestAFenceThatFailsStopsTheManifest: a writer whose lease was taken over
// (its fence fails) writes no manifest, and the window stays unpublished.
func TestAFenceThatFailsStopsTheManifest(t *testing.T) {
	lost := errors.New("lease lost")
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, err := New(cfg, WithFence(func(context.Context) error { return lost }))
	if err != nil {
		t.Fatal(err)
	}
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); !errors.Is(err, lost) {
		t.Fatalf("commit: %v, want the fence's error", err)
	}
	if ok, err := s.Published(out.Spec.Name, out.Window); ok || err != nil {
		t.Errorf("published %v (%v) after the fence failed", ok, err)
	}
}
