package exclusions

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/signing"
)

func testSigner(t *testing.T) (signing.Signer, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return signing.NewEd25519(priv), pub
}

// TestSignedSegments checks that every committed segment gets a signature
// that verifies against its path and hash (its chain head), and that the
// chain still verifies with the signatures beside it.
func TestSignedSegments(t *testing.T) {
	signer, pub := testSigner(t)
	l, out := newLog(t, WithSigner(signer))
	c := openChain(t, l, chainName)
	var heads []string
	for s := range 3 {
		heads = append(heads, commitEntries(t, c, []pipeline.Exclusion{recordEntry(s)}, nil))
	}
	dir := ChainDir(out, chainName)
	for s, head := range heads {
		name := SegmentName(s + 1)
		sig, err := os.ReadFile(filepath.Join(dir, name+signing.Suffix))
		if err != nil {
			t.Fatalf("%s has no signature: %v", name, err)
		}
		if err := signing.Verify(pub, sig, "exclusions/"+filepath.Base(dir)+"/"+name, head); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := VerifyChain(dir); err != nil {
		t.Errorf("a signed chain does not verify: %v", err)
	}
}

// TestSignatureOfADeletedSegmentIsReported checks that deleting the newest
// segment but not its signature is named by VerifyChain.
func TestSignatureOfADeletedSegmentIsReported(t *testing.T) {
	signer, _ := testSigner(t)
	l, out := newLog(t, WithSigner(signer))
	c := openChain(t, l, chainName)
	for s := range 3 {
		commitEntries(t, c, []pipeline.Exclusion{recordEntry(s)}, nil)
	}
	dir := ChainDir(out, chainName)
	must(t, os.Remove(filepath.Join(dir, SegmentName(3))))
	_, err := VerifyChain(dir)
	if err == nil || !strings.Contains(err.Error(), "segment-000003.parquet.sig: the signature of a segment that is not there") {
		t.Errorf("VerifyChain = %v; want the orphan signature named", err)
	}
}

// TestInterruptedSignedCommit checks that a signature written by a commit
// that died before its segment was published is removed when the chain is
// opened again, and that rolling back removes the signatures of the
// segments it removes.
func TestInterruptedSignedCommit(t *testing.T) {
	signer, _ := testSigner(t)
	l, out := newLog(t, WithSigner(signer))
	c := openChain(t, l, chainName)
	commitEntries(t, c, []pipeline.Exclusion{recordEntry(1)}, nil)
	c.hook = func() error { return errors.New("crash") }
	must(t, c.Append(ptr(recordEntry(2))))
	if _, err := c.Commit(context.Background(), nil); err == nil {
		t.Fatal("the hook did not fail the commit")
	}
	dir := ChainDir(out, chainName)
	if _, err := os.Stat(filepath.Join(dir, SegmentName(2)+signing.Suffix)); err != nil {
		t.Fatalf("the interrupted commit left no signature to clean up (%v): the test tests nothing", err)
	}
	c = openChain(t, l, chainName)
	if _, err := os.Stat(filepath.Join(dir, SegmentName(2)+signing.Suffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reopening the chain left the signature of a segment never published (%v)", err)
	}
	if _, err := VerifyChain(dir); err != nil {
		t.Error(err)
	}

	commitEntries(t, c, []pipeline.Exclusion{recordEntry(2)}, nil)
	commitEntries(t, c, []pipeline.Exclusion{recordEntry(3)}, nil)
	must(t, c.Rollback(1))
	for _, n := range []int{2, 3} {
		if _, err := os.Stat(filepath.Join(dir, SegmentName(n)+signing.Suffix)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Rollback(1) left %s%s", SegmentName(n), signing.Suffix)
		}
	}
	if _, err := VerifyChain(dir); err != nil {
		t.Error(err)
	}
}

func ptr[T any](v T) *T { return &v }
