package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ProbePrefix begins the names of Probe's objects, at the store's root (not
// in a directory of their own, which a local store would keep when the
// object is gone).
const ProbePrefix = "_deid_probe-"

// Probe checks that s honours conditional creates, which deid's commits
// rely on: it writes a fresh probe object with a conditional create, then
// again, and expects the second to fail with ErrExists. It removes the
// probe object afterwards. A store that lets the second write through (an
// S3-compatible store that ignores If-None-Match) is refused with an error
// that names it; so is one the first write cannot reach.
func Probe(ctx context.Context, s Store) error {
	var r [12]byte
	rand.Read(r[:])
	key := ProbePrefix + hex.EncodeToString(r[:])
	body := []byte("deid conditional-write probe\n")
	if err := s.Put(ctx, key, bytes.NewReader(body), PutOptions{IfNotExists: true}); err != nil {
		return fmt.Errorf("objstore: probing %s with a conditional write: %w", s, err)
	}
	err := s.Put(ctx, key, bytes.NewReader(body), PutOptions{IfNotExists: true})
	derr := s.Delete(ctx, key)
	switch {
	case err == nil:
		return fmt.Errorf("objstore: %s does not honour conditional writes (If-None-Match); deid cannot commit windows safely there", s)
	case !errors.Is(err, ErrExists):
		return fmt.Errorf("objstore: probing %s with a second conditional write: %w", s, err)
	case derr != nil:
		return fmt.Errorf("objstore: removing the probe object: %w", derr)
	}
	return nil
}
