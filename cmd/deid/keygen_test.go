package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mya/deid/sinks/signing"
)

// TestKeygen writes a key pair, loads it the way a run does, and refuses
// to overwrite it without --force.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	out := deid(t, "keygen", "--out", dir)
	if !strings.Contains(out, "key id ") {
		t.Errorf("keygen says %q", out)
	}
	fi, err := os.Stat(filepath.Join(dir, "deid-signing.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the private key is missing or readable by others: %v %v", fi.Mode(), err)
	}
	s, err := loadSigner(filepath.Join(dir, "deid-signing.key"), "DEID_SIGNING_KEY")
	if err != nil || s == nil {
		t.Fatalf("loadSigner = %v, %v", s, err)
	}
	pub, err := signing.ReadPublicKey(filepath.Join(dir, "deid-signing.pub"))
	if err != nil || signing.KeyID(pub) != s.KeyID() {
		t.Fatalf("the public key does not match the private key: %v", err)
	}
	if code, _, stderr := deidExit("keygen", "--out", dir); code != 2 || !strings.Contains(stderr, "--force") {
		t.Errorf("keygen over an existing pair: exit %d, %s", code, stderr)
	}
	deid(t, "keygen", "--out", dir, "--force")

	t.Setenv("DEID_SIGNING_KEY", "")
	if s, err := loadSigner("", "DEID_SIGNING_KEY"); s != nil || err != nil {
		t.Errorf("no key configured gives %v, %v; want no signer", s, err)
	}
	t.Setenv("DEID_SIGNING_KEY", "garbage-that-is-no-key")
	if _, err := loadSigner("", "DEID_SIGNING_KEY"); err == nil || !strings.Contains(err.Error(), "secrets.signing_key_env") ||
		strings.Contains(err.Error(), "garbage") {
		t.Errorf("a bad key gives %v; want an error naming secrets.signing_key_env and not quoting the key", err)
	}
}
