package exclusions

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/anchors/anchorstest"
)

func commitLine(seq int, sum, prev string) anchors.Line {
	return anchors.Line{Kind: anchors.KindChain, Name: chainName, Seq: seq, Event: anchors.EventCommit, SHA256: sum, Prev: prev}
}

// TestEveryCommitIsAnchored: each segment once when committed, the newest
// again when the chain is reopened (a crash may have come before its
// anchor), and a rollback line before segments are removed, so that the
// segments written again may differ from those anchored before.
func TestEveryCommitIsAnchored(t *testing.T) {
	rec := &anchorstest.Recorder{}
	l, _ := newLog(t, WithAnchors(rec))
	c := openChain(t, l, chainName)
	var heads []string
	for i := range 3 {
		heads = append(heads, commitEntries(t, c, []pipeline.Exclusion{recordEntry(i)}, nil))
	}
	want := []anchors.Line{commitLine(1, heads[0], ""), commitLine(2, heads[1], heads[0]), commitLine(3, heads[2], heads[1])}
	if diff := cmp.Diff(want, rec.Lines()); diff != "" {
		t.Errorf("anchors of the commits (-want +got):\n%s", diff)
	}

	c = openChain(t, l, chainName)
	want = append(want, commitLine(3, heads[2], heads[1]))
	must(t, c.Rollback(1))
	want = append(want, anchors.Line{Kind: anchors.KindChain, Name: chainName, Seq: 1, Event: anchors.EventRollback, SHA256: heads[0]})
	e := recordEntry(1)
	e.DecidedAt++ // a replay decides later: another segment
	again := commitEntries(t, c, []pipeline.Exclusion{e}, nil)
	want = append(want, commitLine(2, again, heads[0]))
	if diff := cmp.Diff(want, rec.Lines()); diff != "" {
		t.Errorf("anchors after a reopen and a rollback (-want +got):\n%s", diff)
	}

	exp := anchors.Expect(rec.Lines())
	if len(exp.Conflicts) != 0 {
		t.Errorf("the replay's anchors conflict: %v", exp.Conflicts)
	}
	if diff := cmp.Diff([]string{heads[0], again}, []string{exp.Lines[0].SHA256, exp.Lines[1].SHA256}); diff != "" || len(exp.Lines) != 2 {
		t.Errorf("expected segments after the rollback: %+v", exp.Lines)
	}
}

func TestAFailedAnchorFailsTheSegmentCommit(t *testing.T) {
	rec := &anchorstest.Recorder{Err: errors.New("anchor disk full")}
	l, _ := newLog(t, WithAnchors(rec))
	c := openChain(t, l, chainName)
	must(t, c.Append(ptr(recordEntry(0))))
	if _, err := c.Commit(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "anchor disk full") {
		t.Errorf("Commit = %v, want the anchor's error", err)
	}
}
