package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mya/deid/sinks/signing"
)

// cmdKeygen writes an ed25519 key pair for signing outputs: the private
// key as PEM (PKCS #8, mode 0600), the public key as PEM (PKIX). It never
// replaces a key pair unless told to.
func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stderr)
	out := fs.String("out", "", "directory to write deid-signing.key (private, 0600) and deid-signing.pub into")
	force := fs.Bool("force", false, "replace an existing key pair")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usageErr("usage: deid keygen --out DIR")
	}
	priv, pub, err := signing.GenerateKey()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	privPath, pubPath := filepath.Join(*out, "deid-signing.key"), filepath.Join(*out, "deid-signing.pub")
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	for _, w := range []struct {
		path string
		b    []byte
		perm os.FileMode
	}{{privPath, priv, 0o600}, {pubPath, pub, 0o644}} {
		fh, err := os.OpenFile(w.path, flags, w.perm)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return usageErr("%s exists; pass --force to replace the key pair (signatures made with the old key will no longer verify with the new one)", w.path)
			}
			return err
		}
		_, werr := fh.Write(w.b)
		if err := errors.Join(werr, fh.Sync(), fh.Close()); err != nil {
			return err
		}
	}
	key, _ := signing.ParsePublicKey(pub)
	fmt.Fprintf(stdout, "wrote %s (private: keep it secret) and %s (public: give it to whoever verifies)\nkey id %s\n\n", privPath, pubPath, signing.KeyID(key))
	fmt.Fprintf(stdout, "Sign outputs: set secrets.signing_key_file: %s in the config\n  (or DEID_SIGNING_KEY to the key file's content).\nVerify them:  deid verify <out> --public-key %s\n", privPath, pubPath)
	return nil
}

// loadSigner returns the signer of the key in secrets.signing_key_file, or
// else in the environment variable secrets.signing_key_env names; nil (no
// signing) when neither is set. The error names the config key and never
// quotes the key. run.go passes the signer to parquet.WithSigner and
// exclusions.WithSigner.
func loadSigner(file, env string) (signing.Signer, error) {
	s, err := signing.Load(file, env)
	if err != nil {
		key := "secrets.signing_key_env"
		if file != "" {
			key = "secrets.signing_key_file"
		}
		return nil, fmt.Errorf("%s: %w (write a key pair with: deid keygen --out DIR)", key, err)
	}
	return s, nil
}
