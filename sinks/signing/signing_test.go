package signing

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
)

func newSigner(t *testing.T) (*Ed25519, ed25519.PublicKey) {
	t.Helper()
	privPEM, pubPEM, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return NewEd25519(priv), pub
}

const (
	path = "exclusions/publish/segment-000001.parquet"
	sum  = "5b5b5ea3d73c4f8e9b7f2b0e5a1f0c3d2e4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c"
)

func TestSignatureVerifies(t *testing.T) {
	s, pub := newSigner(t)
	sig, err := Sign(s, path, sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, sig, path, sum); err != nil {
		t.Fatalf("a fresh signature does not verify: %v", err)
	}
	if s.KeyID() != KeyID(pub) || !s.PublicKey().Equal(pub) {
		t.Error("the signer's key id or public key differs from the pair's")
	}
}

func TestTamperingIsNamed(t *testing.T) {
	s, pub := newSigner(t)
	sig, _ := Sign(s, path, sum)
	_, other := newSigner(t)
	forged := strings.Replace(string(sig), `"signature": "`, `"signature": "AAAA`, 1)
	cases := []struct {
		name       string
		pub        ed25519.PublicKey
		sig        string
		path, sum  string
		wantSubstr string
	}{
		{"a file edited after signing", pub, string(sig), path, strings.Repeat("0", 64), "changed after it was signed"},
		{"a signature moved to another file", pub, string(sig), "exclusions/publish/segment-000002.parquet", sum, "moved from another file"},
		{"another key", other, string(sig), path, sum, "not with the public key given"},
		{"an edited signature", pub, forged, path, sum, "does not verify"},
		{"a signature that is not JSON", pub, "garbage", path, sum, "not readable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.pub, []byte(c.sig), c.path, c.sum)
			if err == nil || !strings.Contains(err.Error(), c.wantSubstr) {
				t.Errorf("Verify = %v, want an error saying %q", err, c.wantSubstr)
			}
		})
	}
}

func TestKeyFormats(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pemKey, _ := MarshalPrivateKey(priv)
	for name, in := range map[string]string{
		"PEM":                 string(pemKey),
		"base64 seed":         base64.StdEncoding.EncodeToString(priv.Seed()),
		"base64 64-byte key":  base64.StdEncoding.EncodeToString(priv),
		"base64 PKCS #8":      base64.StdEncoding.EncodeToString(der),
		"raw url-safe base64": base64.RawURLEncoding.EncodeToString(priv.Seed()) + "\n",
	} {
		got, err := ParsePrivateKey([]byte(in))
		if err != nil || !got.Equal(priv) {
			t.Errorf("%s: got a different key or %v", name, err)
		}
	}
	pub := priv.Public().(ed25519.PublicKey)
	pubPEM, _ := MarshalPublicKey(pub)
	for name, in := range map[string]string{
		"PEM":          string(pubPEM),
		"base64 bytes": base64.StdEncoding.EncodeToString(pub),
	} {
		got, err := ParsePublicKey([]byte(in))
		if err != nil || !got.Equal(pub) {
			t.Errorf("public %s: got a different key or %v", name, err)
		}
	}
	secret := base64.StdEncoding.EncodeToString(priv.Seed())[:20]
	if _, err := ParsePrivateKey([]byte(secret + "!")); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("a bad key gives %v; want an error that does not quote it", err)
	}
	if _, err := ParsePrivateKey(pubPEM); err == nil {
		t.Error("a public key was accepted as a private key")
	}
}

func TestLoad(t *testing.T) {
	if s, err := Load("", ""); s != nil || err != nil {
		t.Errorf("Load with nothing configured = %v, %v; want no signer", s, err)
	}
	t.Setenv("DEID_TEST_SIGNING_KEY", "")
	if s, err := Load("", "DEID_TEST_SIGNING_KEY"); s != nil || err != nil {
		t.Errorf("Load with an empty variable = %v, %v; want no signer", s, err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	t.Setenv("DEID_TEST_SIGNING_KEY", base64.StdEncoding.EncodeToString(priv.Seed()))
	s, err := Load("", "DEID_TEST_SIGNING_KEY")
	if err != nil || s == nil || s.KeyID() != KeyID(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("Load from the environment = %v, %v", s, err)
	}
	t.Setenv("DEID_TEST_SIGNING_KEY", "not a key")
	if _, err := Load("", "DEID_TEST_SIGNING_KEY"); err == nil || !strings.Contains(err.Error(), "$DEID_TEST_SIGNING_KEY") {
		t.Errorf("a bad key in the environment gives %v; want an error naming the variable", err)
	}
	if _, err := Load("/nonexistent/key.pem", ""); err == nil {
		t.Error("a missing key file was not an error")
	}
}
