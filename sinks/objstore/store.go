package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mya/deid/sinks/internal/fsutil"
)

// ErrExists is returned by a conditional create (PutOptions.IfNotExists)
// when the key already holds an object: another writer got there first. The
// object is left as it was.
var ErrExists = errors.New("object already exists")

// ErrNotFound is returned by Get and Stat when the key holds no object.
var ErrNotFound = errors.New("object not found")

// Info describes a stored object.
type Info struct {
	// Key is the object's key, relative to the store's root.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is when the object was last written, as the store reports it.
	ModTime time.Time
}

// PutOptions are the options of one Put.
type PutOptions struct {
	// IfNotExists makes the Put a conditional create: it fails with
	// ErrExists, writing nothing, when the key already holds an object.
	IfNotExists bool
	// Private, on a local store, makes the file readable by its owner and
	// group only (0640) and the directories Put creates for it 0750, as
	// the accounting records and the exclusion log are; otherwise they are
	// 0644 and 0755. An object store's access is its bucket policy's.
	Private bool
}

// Store holds whole objects under slash-separated keys ("a/b/c.parquet"),
// relative to its root (a directory or an s3://bucket/prefix).
//
// Keys are non-empty, valid UTF-8, without a leading or trailing '/', an
// empty, "." or ".." segment, a backslash or a NUL; a segment may not look
// like a temporary file (".name.tmp"). Every method rejects another key
// before doing anything.
//
// Every method blocks until done; ctx cancels it (an S3 request in flight,
// a backoff wait). All methods are safe for concurrent use.
type Store interface {
	// Put stores the whole content of body (read from its start, to its
	// end) under key, replacing any object there unless opts.IfNotExists
	// is set, in which case it fails with ErrExists if an object is there.
	// Nothing is visible under key until Put returns nil; after an error
	// other than ErrExists the key holds either its old object or, when the
	// error came after the store accepted the object, the new one. Put may
	// read body more than once (a retry seeks back to its start); it does
	// not close it, and does not keep it after returning.
	Put(ctx context.Context, key string, body io.ReadSeeker, opts PutOptions) error
	// Get opens the object under key for reading, or fails with
	// ErrNotFound. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object under key, or fails with ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// List describes every object whose key starts with prefix (a string
	// prefix, not only a directory: "a/b" lists "a/b/c" and "a/bc"),
	// sorted by key. An empty prefix lists the whole store.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object under key. A key without an object is not
	// an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages: its directory or its
	// s3://bucket/prefix URL. It never contains a credential.
	String() string
}

// Exists tells whether key holds an object in s.
func Exists(ctx context.Context, s Store, key string) (bool, error) {
	_, err := s.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Open opens the store that url names: "s3://bucket/prefix" (or
// "s3://bucket") for S3, configured by cfg.S3; a local path, or a
// "file://" URL, for a directory, which is created if missing.
func Open(url string, cfg Config, opts ...Option) (Store, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return NewLocal(url)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		return NewS3(url, cfg, opts...)
	case "file":
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("objstore: %s: a file URL needs an absolute path (file:///path)", redact(url))
		}
		return NewLocal(rest)
	default:
		return nil, fmt.Errorf("objstore: %s: unsupported storage scheme %q; use a local path or s3://bucket/prefix", redact(url), scheme)
	}
}

// redact hides the user part of a URL ("scheme://user:secret@host/…"),
// which may hold a secret, for messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = "…@" + host[i+1:]
	}
	if path != "" || strings.Contains(rest, "/") {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}

// checkKey reports why key is not a valid object key, or nil.
func checkKey(key string) error {
	if err := checkPath(key); err != nil {
		return fmt.Errorf("objstore: invalid key %q: %w", key, err)
	}
	return nil
}

// checkPath checks a key or an S3 prefix: see Store.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case !utf8.ValidString(p):
		return errors.New("not valid UTF-8")
	case strings.ContainsAny(p, "\\\x00"):
		return errors.New("contains a backslash or a NUL")
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return errors.New("has an empty segment (a leading, trailing or doubled '/')")
		case seg == "." || seg == "..":
			return errors.New(`has a "." or ".." segment`)
		case fsutil.IsTemp(seg):
			return fmt.Errorf("segment %q looks like a temporary file", seg)
		}
	}
	return nil
}

// checkPrefix checks a List prefix: empty, or a key that may end with '/'.
func checkPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return nil
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("objstore: invalid list prefix %q: %w", prefix, err)
	}
	return nil
}

// size returns body's length and seeks it back to its start.
func size(body io.Seeker) (int64, error) {
	n, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("objstore: measuring the body: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("objstore: rewinding the body: %w", err)
	}
	return n, nil
}
