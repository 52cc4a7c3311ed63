package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/mya/deid/pipeline"
)

// Source reads NDJSON files, one partition per file. It implements
// pipeline.Source. Safe for concurrent use; each reader it opens is not.
type Source struct {
	cfg   Config
	files []string
	total int64
	// done counts the bytes read from disk by every reader opened, for
	// Progress; readers add to it from their own goroutines.
	done atomic.Int64
}

// New validates cfg, resolves its paths to the input files and returns a
// source over them. Nothing is opened until Open.
func New(cfg Config) (*Source, error) {
	files, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, files: files}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			s.total += fi.Size()
		}
	}
	return s, nil
}

// Files returns the input files, sorted by base name (the partition name).
func (s *Source) Files() []string { return append([]string(nil), s.files...) }

// Progress returns the bytes read so far from the input files (compressed
// bytes for gzip files) and their total size on disk.
func (s *Source) Progress() (done, total int64) { return s.done.Load(), s.total }

// Open opens every input file; it implements pipeline.Source. A file can
// always be resumed: when resume (nil: none) returns ok for a partition,
// that partition starts at line next (1-based), as Reader.SeekLine does;
// otherwise, or when next is 0 (nothing read yet), it starts at line 1. On
// error nothing is left open.
func (s *Source) Open(ctx context.Context, resume pipeline.Resume) ([]pipeline.PartitionReader, error) {
	var out []pipeline.PartitionReader
	fail := func(err error) ([]pipeline.PartitionReader, error) {
		for _, r := range out {
			r.Close()
		}
		return nil, err
	}
	for _, path := range s.files {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		r, err := open(path, s.cfg, &s.done)
		if err != nil {
			return fail(err)
		}
		out = append(out, r)
		if resume == nil {
			continue
		}
		// A checkpoint taken before the partition's first line was read
		// (a stop as the run started) names next 0: start at line 1.
		if next, ok := resume(r.ID()); ok && next != 0 {
			if err := r.SeekLine(next); err != nil {
				return fail(err)
			}
		}
	}
	return out, nil
}

// OpenFile opens one NDJSON file as a partition reader, outside any Source
// (tests, tools). cfg's Paths are ignored; its other settings apply.
func OpenFile(path string, cfg Config) (*Reader, error) {
	cfg.Paths = []string{path}
	if _, err := cfg.resolve(); err != nil {
		return nil, err
	}
	return open(path, cfg, nil)
}

// countingFile counts the bytes read from a file into a shared counter.
type countingFile struct {
	f *os.File
	n *atomic.Int64
}

func (c countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if c.n != nil && n > 0 {
		c.n.Add(int64(n))
	}
	return n, err
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("file: reader closed")

func partitionID(path string) pipeline.PartitionID {
	return pipeline.PartitionID{Source: filepath.Base(path)}
}
