package exclusions

import (
	"context"
	"errors"
	"testing"

	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// TestAChainOnS3ResumesRollsBackAndRefusesASecondWriter: a chain in an
// s3:// output resumes from its newest segment (head and sequence read
// from the store), two handles cannot both commit one sequence number (the
// segment's conditional create), and a rollback removes the newer
// segments from the store.
func TestAChainOnS3ResumesRollsBackAndRefusesASecondWriter(t *testing.T) {
	srv := s3test.Require(t)
	srv.Setenv(t)
	cfg := objstore.DefaultConfig()
	cfg.S3.Endpoint, cfg.S3.ForcePathStyle = srv.Endpoint, true
	url := "s3://" + srv.Bucket(t) + "/out"
	st, err := objstore.NewS3(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lc := DefaultConfig()
	lc.Dir = url
	l, err := New(lc, WithDatasets(spec), WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := openChain(t, l, chainName)
	var heads []string
	for seg := range 3 {
		for i := range 4 {
			e := recordEntry(seg*4 + i)
			must(t, c.Append(&e))
		}
		h, err := c.Commit(ctx, nil)
		must(t, err)
		heads = append(heads, h)
	}

	again := openChain(t, l, chainName)
	if again.Seq() != 3 || again.Head() != heads[2] {
		t.Fatalf("resumed at seq %d head %.12s, want 3 and %.12s", again.Seq(), again.Head(), heads[2])
	}
	// The first handle and the resumed one both try segment 4.
	e := recordEntry(100)
	must(t, c.Append(&e))
	must(t, again.Append(&e))
	if _, err := again.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, nil); !errors.Is(err, objstore.ErrExists) || !errors.Is(err, pipeline.ErrChainAdvanced) {
		t.Fatalf("a second writer of segment 4: %v, want ErrExists", err)
	}

	must(t, again.Rollback(1))
	if again.Seq() != 1 || again.Head() != heads[0] {
		t.Errorf("after rollback: seq %d head %.12s, want 1 and %.12s", again.Seq(), again.Head(), heads[0])
	}
	infos, err := st.List(ctx, "exclusions/")
	must(t, err)
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	if want := "exclusions/events-00.ndjson%5B0%5D/" + SegmentName(1); len(keys) != 1 || keys[0] != want {
		t.Errorf("after rollback the store holds %v, want [%s]", keys, want)
	}
	got, _, err := l.ReadSegment(ctx, chainName, 1)
	must(t, err)
	if len(got) != 4 || got[0].Reason == pipeline.ReasonNone {
		t.Errorf("segment 1 reads back %d entries, want 4", len(got))
	}
}
