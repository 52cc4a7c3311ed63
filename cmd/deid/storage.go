package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/objstore"
)

// processingClock is a run's processing clock: decision times and the
// reference of max_future_skew. Tests fix it to compare two runs' bytes.
var processingClock = time.Now

// isURL tells whether a configured location is a URL (s3://bucket/prefix)
// rather than a local path.
func isURL(p string) bool { return strings.Contains(p, "://") }

// checkStorageURL checks a location that may be an object-storage URL: a
// path, or s3://bucket/prefix. Another scheme is refused by name.
func checkStorageURL(key, p string) error {
	if !isURL(p) {
		return nil
	}
	scheme, _, _ := strings.Cut(p, "://")
	if !strings.EqualFold(scheme, "s3") {
		return fmt.Errorf("%s: %q: only s3://bucket/prefix URLs (or a local path) are supported", key, p)
	}
	if _, _, err := objstore.ParseS3URL(p); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// openStore opens the store at p (configuration key key): a directory, or
// an s3:// URL configured by storage.s3 and checked with objstore.Probe,
// so that a store that ignores conditional writes (on which two writers
// could both commit a window) is refused before anything is written. A
// directory is not probed: its conditional create is a hard link, which
// the kernel refuses when the name exists.
func openStore(ctx context.Context, cfg objstore.Config, key, p string) (objstore.Store, error) {
	st, err := objstore.Open(p, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if isURL(p) {
		if err := objstore.Probe(ctx, st); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return st, nil
}

// localNames is what localize made: the temporary copies of an s3://
// output and anchor log, and the replacements that name them by their URLs
// in what is printed. A nil *localNames made no copy.
type localNames struct {
	dirs []string
	r    *strings.Replacer
}

func (n *localNames) cleanup() {
	if n == nil {
		return
	}
	for _, d := range n.dirs {
		os.RemoveAll(d)
	}
}

// writer writes to w with every copy's path replaced by its URL.
func (n *localNames) writer(w io.Writer) io.Writer {
	if n == nil || n.r == nil {
		return w
	}
	return replacingWriter{w: w, r: n.r}
}

type replacingWriter struct {
	w io.Writer
	r *strings.Replacer
}

func (rw replacingWriter) Write(p []byte) (int, error) {
	if _, err := rw.r.WriteString(rw.w, string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// localize returns a local directory holding the output out: out itself,
// or for an s3:// URL a temporary copy (verify.Mirror); and an s3:// anchor
// log in opts.Anchors is copied into a temporary file the same way. The
// caller calls names.cleanup, whatever the error.
func (f *verifyFlags) localize(ctx context.Context, out string, opts *verify.Options) (dir string, names *localNames, err error) {
	names = &localNames{}
	var pairs []string
	dir = out
	if isURL(out) {
		st, err := objstore.Open(out, f.storage)
		if err != nil {
			return "", names, &exitError{code: 2, err: err}
		}
		tmp, err := os.MkdirTemp("", "deid-verify-")
		if err != nil {
			return "", names, err
		}
		names.dirs = append(names.dirs, tmp)
		dir = filepath.Join(tmp, "out")
		if err := verify.Mirror(ctx, st, dir); err != nil {
			return "", names, err
		}
		pairs = append(pairs, dir, strings.TrimSuffix(out, "/"))
	}
	if isURL(opts.Anchors) {
		st, err := objstore.Open(opts.Anchors, f.storage)
		if err != nil {
			return "", names, &exitError{code: 2, err: fmt.Errorf("anchors: %w", err)}
		}
		tmp, err := os.MkdirTemp("", "deid-anchors-")
		if err != nil {
			return "", names, err
		}
		names.dirs = append(names.dirs, tmp)
		var b bytes.Buffer
		if err := anchors.CopyStore(ctx, st, &b); err != nil {
			return "", names, fmt.Errorf("anchors: %w", err)
		}
		path := filepath.Join(tmp, "anchors.ndjson")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			return "", names, err
		}
		pairs = append(pairs, path, opts.Anchors)
		opts.Anchors = path
	}
	if len(pairs) > 0 {
		names.r = strings.NewReplacer(pairs...)
	}
	return dir, names, nil
}
