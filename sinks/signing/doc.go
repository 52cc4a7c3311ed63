// Package signing signs what the sinks commit, so that compliance can tell
// deid's outputs from anyone else's (contract §8: "optionally signed (ed25519)
// when a key is configured").
//
// A signed file gets a detached signature beside it, named after it with
// ".sig" appended: _manifest.json.sig, segment-000001.parquet.sig. The
// signature file is a small JSON object (Signature) naming the file by its
// path relative to the output directory and its SHA-256; the ed25519
// signature covers exactly those two (Message), so a signature moved to
// another file, or a file edited after it was signed, fails to verify.
//
// Keys: an ed25519 private key as PEM (PKCS #8, "PRIVATE KEY"), or base64
// of its 32-byte seed, of the 64-byte key, or of the PKCS #8 DER; public
// keys as PEM (PKIX, "PUBLIC KEY") or base64 of the 32 bytes. `deid keygen`
// writes a PEM pair. Errors never quote key material.
//
// The sinks take a Signer as an option (parquet.WithSigner,
// exclusions.WithSigner); a nil Signer means unsigned outputs. The Signer
// interface is small so that a key held elsewhere (a KMS, an HSM) can sign
// too; Ed25519 is the implementation for a key in a file or the
// environment.
package signing
