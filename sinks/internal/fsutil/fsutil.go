// Package fsutil holds the file-system discipline the sinks share: files
// written under a temporary name in their final directory, hashed as they are
// written, fsynced, then renamed (or linked, never replacing) into place,
// with the directory fsynced after; and the injective, file-system-safe
// encoding of partition and chain names.
package fsutil

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File is a file being written under a temporary name (".<prefix>-*.tmp",
// hidden from Hive-style readers) in the directory it will be published in.
// It hashes everything written with SHA-256. Not safe for concurrent use.
type File struct {
	dir  string
	tmp  string
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	n    int64
	sum  string
	done bool
	// placed is set once the file has its final name.
	placed bool
}

// Create starts a temporary file in dir with the given permissions.
func Create(dir, prefix string, perm fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(dir, "."+prefix+"-*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	h := sha256.New()
	return &File{dir: dir, tmp: f.Name(), f: f, bw: bufio.NewWriterSize(f, 256<<10), h: h}, nil
}

// Write writes p to the file and the hash.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.bw.Write(p)
	f.h.Write(p[:n])
	f.n += int64(n)
	return n, err
}

// Size returns the number of bytes written so far.
func (f *File) Size() int64 { return f.n }

// Sync flushes, fsyncs and closes the temporary file, and fixes its hash.
// Nothing can be written after it.
func (f *File) Sync() error {
	if err := f.bw.Flush(); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return err
	}
	if err := f.f.Close(); err != nil {
		return err
	}
	f.f = nil
	f.sum = hex.EncodeToString(f.h.Sum(nil))
	return nil
}

// SHA256 returns the hex SHA-256 of the content; valid after Sync.
func (f *File) SHA256() string { return f.sum }

// Rename moves the synced file to dir/name, replacing any file there, and
// fsyncs the directory. Use it for content-addressed names, where a file
// already there has the same content.
func (f *File) Rename(name string) error {
	if f.f != nil {
		return errors.New("fsutil: rename before sync")
	}
	if err := os.Rename(f.tmp, filepath.Join(f.dir, name)); err != nil {
		return err
	}
	f.done, f.placed = true, true
	return SyncDir(f.dir)
}

// Publish moves the synced file to dir/name only if nothing is there, and
// fsyncs the directory. It fails with an error wrapping fs.ErrExist when
// dir/name exists, so a published file is never replaced, even by another
// process. It uses a hard link, falling back to check-then-rename on file
// systems without links.
func (f *File) Publish(name string) error {
	if f.f != nil {
		return errors.New("fsutil: publish before sync")
	}
	final := filepath.Join(f.dir, name)
	err := os.Link(f.tmp, final)
	switch {
	case err == nil:
		os.Remove(f.tmp)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", final, fs.ErrExist)
	default:
		if _, serr := os.Lstat(final); serr == nil {
			return fmt.Errorf("%s: %w", final, fs.ErrExist)
		}
		if err := os.Rename(f.tmp, final); err != nil {
			return err
		}
	}
	f.done, f.placed = true, true
	return SyncDir(f.dir)
}

// Placed tells whether Rename or Publish put the file in place, even if
// fsyncing the directory afterwards failed: the file is then visible but
// may not survive a crash.
func (f *File) Placed() bool { return f.placed }

// Abort closes and removes the temporary file, unless it was published.
// Safe to call more than once and after a successful publication.
func (f *File) Abort() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	if !f.done {
		os.Remove(f.tmp)
		f.done = true
	}
}

// IsTemp tells whether a directory entry's name is one of Create's
// temporary files.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
}

// RemoveTemps removes the temporary files a crashed writer left in dir.
func RemoveTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// SyncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll creates dir and any missing parents, fsyncing the parent of each
// directory it creates so that the new entries survive a crash.
func MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
				return nil
			}
		}
		return err
	}
	return SyncDir(parent)
}

// maxName bounds an encoded name; longer ones are shortened with a hash.
const maxName = 200

// EncodeName turns a partition or chain name into a single path element
// that is safe on every common file system and in shell globs, injectively:
// ASCII letters, digits, '-' and '_' are kept, '.' is kept except in the
// first position, and every other byte becomes %XX. A result longer than
// 200 bytes is cut and suffixed with "~" and the name's SHA-256, which
// keeps it injective ('~' appears in no other encoding) but not reversible;
// whoever needs the name back records it beside the file.
func EncodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	s := b.String()
	if len(s) > maxName {
		sum := sha256.Sum256([]byte(name))
		s = s[:maxName-65] + "~" + hex.EncodeToString(sum[:])
	}
	return s
}

// DecodeName reverses EncodeName. It fails for a shortened name or a string
// EncodeName cannot have produced.
func DecodeName(enc string) (string, error) {
	if strings.Contains(enc, "~") {
		return "", fmt.Errorf("name %q was shortened and cannot be decoded", enc)
	}
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(enc) {
			return "", fmt.Errorf("name %q: truncated escape", enc)
		}
		v, err := hex.DecodeString(enc[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("name %q: bad escape", enc)
		}
		b.WriteByte(v[0])
		i += 2
	}
	name := b.String()
	if EncodeName(name) != enc {
		return "", fmt.Errorf("name %q is not in canonical encoding", enc)
	}
	return name, nil
}

// HashFile returns the hex SHA-256 of a file's content.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
