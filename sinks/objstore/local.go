package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/mya/deid/sinks/internal/fsutil"
)

// Local is a Store in a directory of the local file system: a key is a
// path below it. It is the file-system discipline the sinks use today: a
// temporary file in the final directory, fsynced, then renamed into place
// (or, for a conditional create, hard-linked, which fails when the name is
// taken), with the directory fsynced after; directories it creates are
// fsynced into their parents.
type Local struct {
	dir string
}

// NewLocal opens the directory dir as a Store, creating it if missing.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("objstore: empty directory")
	}
	dir = filepath.Clean(dir)
	if err := fsutil.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	return &Local{dir: dir}, nil
}

// String returns the directory.
func (l *Local) String() string { return l.dir }

func (l *Local) path(key string) string { return filepath.Join(l.dir, filepath.FromSlash(key)) }

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, body io.ReadSeeker, opts PutOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("objstore: rewinding the body: %w", err)
	}
	final := l.path(key)
	dir, name := filepath.Dir(final), filepath.Base(final)
	filePerm, dirPerm := fs.FileMode(0o644), fs.FileMode(0o755)
	if opts.Private {
		filePerm, dirPerm = 0o640, 0o750
	}
	if err := fsutil.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	f, err := fsutil.Create(dir, name, filePerm)
	if err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	defer f.Abort()
	if _, err := io.Copy(f, body); err != nil {
		return fmt.Errorf("objstore: writing %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("objstore: writing %s: %w", final, err)
	}
	if opts.IfNotExists {
		err = f.Publish(name)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("objstore: %s: %w", final, ErrExists)
		}
	} else {
		err = f.Rename(name)
	}
	if err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	return nil
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, l.wrap(err)
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = fs.ErrNotExist
		}
		return nil, l.wrap(&fs.PathError{Op: "open", Path: l.path(key), Err: err})
	}
	return f, nil
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	st, err := os.Stat(l.path(key))
	if err == nil && st.IsDir() {
		err = &fs.PathError{Op: "stat", Path: l.path(key), Err: fs.ErrNotExist}
	}
	if err != nil {
		return Info{}, l.wrap(err)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List implements Store.
func (l *Local) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk from the deepest directory the prefix names in full.
	start := l.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = l.path(prefix[:i])
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || fsutil.IsTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(l.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: st.Size(), ModTime: st.ModTime()})
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: listing %s: %w", path.Join(l.dir, prefix), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	p := l.path(key)
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		return nil // a directory holds no object
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("objstore: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("objstore: %w", err)
	}
	return nil
}

// RemoveTemps removes the temporary files a writer killed in the middle of
// a Put left in the directory of the prefix dir ("a/b"), which List does
// not show; an object store has none.
func (l *Local) RemoveTemps(dir string) error {
	if err := checkKey(dir); err != nil {
		return err
	}
	if err := fsutil.RemoveTemps(l.path(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: %w", err)
	}
	return nil
}

// wrap turns a missing file into ErrNotFound, keeping the path.
func (l *Local) wrap(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: %w: %w", err, ErrNotFound)
	}
	// A path through a file ("a/b" when "a" is an object) holds nothing.
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("objstore: %w: %w", err, ErrNotFound)
	}
	return fmt.Errorf("objstore: %w", err)
}
