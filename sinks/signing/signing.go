package signing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Suffix is appended to a signed file's name to name its signature file.
const Suffix = ".sig"

// Algorithm is the only signature algorithm written and accepted.
const Algorithm = "ed25519"

// Version is the version of the signature file format.
const Version = 1

// Signer signs messages for the sinks. Implementations must be safe for
// concurrent use: the dataset sink and every exclusion chain sign from
// their own goroutines.
type Signer interface {
	// KeyID names the public key that verifies the signatures (KeyID of
	// that key), so a verifier holding another key says so plainly.
	KeyID() string
	// Sign returns the ed25519 signature of message. It does not block on
	// anything but the signing itself (a remote signer may; it then owns
	// its timeouts).
	Sign(message []byte) ([]byte, error)
}

// Ed25519 is a Signer holding an ed25519 private key in memory.
type Ed25519 struct {
	key ed25519.PrivateKey
	id  string
}

// NewEd25519 returns a signer for key.
func NewEd25519(key ed25519.PrivateKey) *Ed25519 {
	return &Ed25519{key: key, id: KeyID(key.Public().(ed25519.PublicKey))}
}

// KeyID returns the id of the signer's public key.
func (s *Ed25519) KeyID() string { return s.id }

// Sign signs message with the private key.
func (s *Ed25519) Sign(message []byte) ([]byte, error) {
	return s.key.Sign(rand.Reader, message, crypto.Hash(0))
}

// PublicKey returns the public key that verifies the signer's signatures.
func (s *Ed25519) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID returns a public key's id: the first 16 hex digits of the SHA-256
// of its 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signature is the content of a detached signature file.
type Signature struct {
	Version   int    `json:"version"`
	Algorithm string `json:"algorithm"`
	// KeyID names the public key that verifies it.
	KeyID string `json:"key_id"`
	// Path is the signed file's path relative to the output directory,
	// with forward slashes: "datasets/campaign_metrics/dt=2026-11-01/_manifest.json".
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 of the signed file's content.
	SHA256 string `json:"sha256"`
	// Signature is the base64 ed25519 signature of Message(Path, SHA256).
	Signature string `json:"signature"`
}

// Message is what a signature covers: the signed file's path relative to
// the output directory and its content's hex SHA-256. Signing the hash
// rather than the content keeps a segment of any size one small message.
func Message(path, sha256Hex string) []byte {
	return []byte("deid-signature-v1\npath=" + path + "\nsha256=" + sha256Hex + "\n")
}

// Sign returns the signature file for a file at path (relative to the
// output directory, slash-separated) whose content hashes to sha256Hex.
func Sign(s Signer, path, sha256Hex string) ([]byte, error) {
	sig, err := s.Sign(Message(path, sha256Hex))
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", path, err)
	}
	b, err := json.MarshalIndent(Signature{Version: Version, Algorithm: Algorithm, KeyID: s.KeyID(), Path: path,
		SHA256: sha256Hex, Signature: base64.StdEncoding.EncodeToString(sig)}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Verify checks a signature file's content against the file it must sign:
// its path relative to the output directory and the hex SHA-256 of its
// content as found now. The error says in plain words what does not match.
func Verify(pub ed25519.PublicKey, sigFile []byte, path, sha256Hex string) error {
	var s Signature
	dec := json.NewDecoder(bytes.NewReader(sigFile))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("the signature file is not readable: %v", err)
	}
	switch {
	case s.Version != Version:
		return fmt.Errorf("signature format version %d, want %d", s.Version, Version)
	case s.Algorithm != Algorithm:
		return fmt.Errorf("signature algorithm %q, want %q", s.Algorithm, Algorithm)
	case s.KeyID != KeyID(pub):
		return fmt.Errorf("signed with key %s, not with the public key given (%s)", s.KeyID, KeyID(pub))
	case s.Path != path:
		return fmt.Errorf("the signature is for %s: it was moved from another file", s.Path)
	case s.SHA256 != sha256Hex:
		return fmt.Errorf("the file was changed after it was signed (signed SHA-256 %s…, now %s…)", short(s.SHA256), short(sha256Hex))
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(pub, Message(s.Path, s.SHA256), sig) {
		return errors.New("the signature does not verify: it was forged or edited")
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// GenerateKey returns a new key pair as PEM: the private key as PKCS #8,
// the public key as PKIX.
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if privPEM, err = MarshalPrivateKey(priv); err != nil {
		return nil, nil, err
	}
	if pubPEM, err = MarshalPublicKey(pub); err != nil {
		return nil, nil, err
	}
	return privPEM, pubPEM, nil
}

// MarshalPrivateKey encodes a private key as PEM (PKCS #8).
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes a public key as PEM (PKIX).
func MarshalPublicKey(key ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads an ed25519 private key: PEM (PKCS #8), or base64 of
// the 32-byte seed, the 64-byte key or the PKCS #8 DER. Errors never quote
// the input.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	b = bytes.TrimSpace(b)
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %q, want \"PRIVATE KEY\" (PKCS #8, as deid keygen writes)", blk.Type)
		}
		return pkcs8(blk.Bytes)
	}
	raw, err := decodeBase64(string(b))
	if err != nil {
		return nil, errors.New("neither PEM nor base64; write it with deid keygen")
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(key, raw) {
			return nil, errors.New("the 64-byte key's public half does not match its seed")
		}
		return key, nil
	}
	return pkcs8(raw)
}

func pkcs8(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not a PKCS #8 private key")
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", k)
	}
	return key, nil
}

// ParsePublicKey reads an ed25519 public key: PEM (PKIX), or base64 of its
// 32 bytes or of the PKIX DER.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	b = bytes.TrimSpace(b)
	var der []byte
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q, want \"PUBLIC KEY\" (as deid keygen writes)", blk.Type)
		}
		der = blk.Bytes
	} else {
		raw, err := decodeBase64(string(b))
		if err != nil {
			return nil, errors.New("neither PEM nor base64")
		}
		if len(raw) == ed25519.PublicKeySize {
			return ed25519.PublicKey(raw), nil
		}
		der = raw
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ed25519 key", k)
	}
	return key, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// ReadPublicKey reads a public key file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Load returns the signer of the private key in file, or else in the
// environment variable env, or nil (no signing) when file is empty and env
// is empty or unset. A key that is given but unreadable is an error naming
// where it came from, never quoting it.
func Load(file, env string) (Signer, error) {
	var (
		b    []byte
		from string
	)
	switch {
	case file != "":
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		from = "signing key file " + file
	case env != "" && strings.TrimSpace(os.Getenv(env)) != "":
		b, from = []byte(os.Getenv(env)), "signing key in $"+env
	default:
		return nil, nil
	}
	key, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return NewEd25519(key), nil
}
