package parquet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mya/deid/sinks/internal/fsutil"
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

// TestSignedManifest checks that a sink with a signer writes a signature
// beside every manifest that verifies against the manifest's path and
// content, and that a sink without one writes none.
func TestSignedManifest(t *testing.T) {
	signer, pub := testSigner(t)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, err := New(cfg, WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	wdir, _ := s.Dir(out.Spec.Name, out.Window)
	manifest := filepath.Join(wdir, ManifestName)
	sig, err := os.ReadFile(manifest + signing.Suffix)
	if err != nil {
		t.Fatalf("no signature beside the manifest: %v", err)
	}
	sum, err := fsutil.HashFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.Verify(pub, sig, "datasets/campaign_metrics/dt=2024-05-01/_manifest.json", sum); err != nil {
		t.Errorf("the manifest's signature does not verify: %v", err)
	}

	unsigned, udir := newSink(t)
	if err := unsigned.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(udir, "datasets/campaign_metrics/dt=2024-05-01", ManifestName+signing.Suffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a sink without a signer wrote a signature (%v)", err)
	}
}

// TestRetriedSignedCommitSignsTheNewManifest checks that a commit that
// fails after signing but before the manifest leaves a signature that the
// next commit replaces with the right one.
func TestRetriedSignedCommitSignsTheNewManifest(t *testing.T) {
	signer, pub := testSigner(t)
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, _ := New(cfg, WithSigner(signer))
	s.hook = func(step string) error {
		if step == "manifest" {
			return errors.New("crash")
		}
		return nil
	}
	out := testOutput(testRows())
	if err := s.Commit(context.Background(), out); err == nil {
		t.Fatal("the hook did not fail the commit")
	}
	s.hook = nil
	out.Acct.CellsSuppressed++ // a different manifest this time
	if err := s.Commit(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "datasets/campaign_metrics/dt=2024-05-01", ManifestName)
	sig, _ := os.ReadFile(manifest + signing.Suffix)
	sum, _ := fsutil.HashFile(manifest)
	if err := signing.Verify(pub, sig, "datasets/campaign_metrics/dt=2024-05-01/_manifest.json", sum); err != nil {
		t.Errorf("after a retried commit the signature does not verify: %v", err)
	}
}
