package verify

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mya/deid/sinks/objstore"
)

// Mirror copies the output in st (an s3:// output) into the empty local
// directory dir, object by object with the same names and bytes, so that
// Run and Load check it as they check a directory: verify reads and hashes
// every byte of an output anyway, so a copy costs no more transfer than
// reading in place, and one code path checks both. The output's lock
// objects (_deid.lock/…) are left out: they are no part of what is checked.
func Mirror(ctx context.Context, st objstore.Store, dir string) error {
	infos, err := st.List(ctx, "")
	if err != nil {
		return fmt.Errorf("%s: %w", st, err)
	}
	for _, in := range infos {
		if strings.HasPrefix(in.Key, "_deid.lock/") || strings.HasPrefix(in.Key, objstore.ProbePrefix) {
			continue
		}
		if err := copyObject(ctx, st, in.Key, filepath.Join(dir, filepath.FromSlash(in.Key))); err != nil {
			return fmt.Errorf("%s: copying %s: %w", st, in.Key, err)
		}
	}
	return nil
}

func copyObject(ctx context.Context, st objstore.Store, key, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	rc, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
