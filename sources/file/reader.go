package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"

	"github.com/mya/deid/pipeline"
)

// Reader reads one NDJSON file as one partition. It implements
// pipeline.PartitionReader. Not safe for concurrent use.
type Reader struct {
	id      pipeline.PartitionID
	path    string
	f       *os.File
	zr      *gzip.Reader // nil for a plain file
	br      *bufio.Reader
	batch   int
	maxLine int

	// line is the number of the last line read (0 before the first).
	line int64
	// skipTo is the last line to discard before records are returned again.
	skipTo int64
	// started tells whether Next has returned a record yet.
	started bool
	// err is sticky: io.EOF at the end, or the failure that stopped reading.
	err error

	// arena holds the bytes of the current batch's records, recs the batch
	// and ends the end of each record's Value in arena; all three are reused.
	// The previous batch's arena and records are kept aside (spareArena,
	// spareRecs) and reused by the batch after: a batch stays valid while
	// the next one is read (pipeline.PartitionReader).
	arena      []byte
	recs       []pipeline.Record
	ends       []int
	spareArena []byte
	spareRecs  []pipeline.Record
}

// readBufferSize is the size of the buffer lines are read through.
const readBufferSize = 256 << 10

// batchBytes caps a batch's arena: a batch ends early once its records hold
// this much, so that long lines do not make a batch of BatchSize × MaxLineBytes.
const batchBytes = 4 << 20

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// utf8BOM is the UTF-8 byte-order mark some tools write at the start of a file.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// open opens path; done, when non-nil, counts the bytes read from disk.
func open(path string, cfg Config, done *atomic.Int64) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	r := &Reader{id: partitionID(path), path: path, f: f, batch: cfg.BatchSize, maxLine: cfg.MaxLineBytes}
	br := bufio.NewReaderSize(countingFile{f: f, n: done}, readBufferSize)
	magic, err := br.Peek(len(gzipMagic))
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("file: %s: reading: %w", path, err)
	}
	if bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("file: %s: starts like gzip but is not a valid gzip stream: %w", path, err)
		}
		r.zr = zr
		br = bufio.NewReaderSize(zr, readBufferSize)
	}
	r.br = br
	if bom, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(bom, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	return r, nil
}

// ID names the partition: the file's base name, partition 0.
func (r *Reader) ID() pipeline.PartitionID { return r.id }

// Path returns the file's path as configured.
func (r *Reader) Path() string { return r.path }

// Line returns the number of the last line read (0 before the first).
func (r *Reader) Line() int64 { return r.line }

// SeekLine makes line next (1-based) the first line the next call to Next
// returns; the lines before it are read and discarded then, since a line's
// place in a file is known only by reading up to it. It resumes a partition
// from a checkpoint. SeekLine only moves forward and only before Next has
// returned a record; when the file turns out to have fewer than next-1
// lines, Next returns an error, since the input then changed since the
// checkpoint.
func (r *Reader) SeekLine(next int64) error {
	switch {
	case next < 1:
		return fmt.Errorf("file: %s: cannot resume at line %d; lines are numbered from 1", r.path, next)
	case r.started:
		return fmt.Errorf("file: %s: cannot resume at line %d after reading has started", r.path, next)
	}
	r.skipTo = max(r.skipTo, next-1)
	return nil
}

// Next returns the next batch of at most BatchSize records, in line order.
// It returns io.EOF, with no records, after the last line; a read or gzip
// failure is returned after the records read before it. The batch and its
// records' Values live in buffers the reader reuses: they are valid until
// the second call to Next after the one that returned them, which
// overwrites them. ctx is checked between
// batches (and while skipping to a resume point); a file read never blocks
// for long.
func (r *Reader) Next(ctx context.Context) ([]pipeline.Record, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.f == nil {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.line < r.skipTo {
		if err := r.skip(ctx); err != nil {
			return nil, err
		}
	}
	r.arena, r.spareArena = r.spareArena[:0], r.arena
	r.recs, r.spareRecs = r.spareRecs[:0], r.recs
	r.ends = r.ends[:0]
	for len(r.recs) < r.batch && len(r.arena) < batchBytes {
		start := len(r.arena)
		n, err := r.readLine()
		if err != nil {
			r.arena = r.arena[:start]
			r.err = err
			break
		}
		r.line++
		rec := pipeline.Record{Pos: pipeline.Position{Source: r.id.Source, Partition: r.id.Partition, Offset: r.line}}
		switch {
		case n > r.maxLine:
			r.arena = r.arena[:start+r.maxLine]
			rec.Err = pipeline.Malformed("too_long", "",
				"line of %d bytes exceeds the limit of %d bytes; raise input.max_line_bytes", n, r.maxLine)
		case blank(r.arena[start:]):
			rec.Err = pipeline.Malformed("empty_record", "", "blank line")
		}
		r.recs = append(r.recs, rec)
		r.ends = append(r.ends, len(r.arena))
	}
	// The arena may have moved while it grew: slice the Values only now.
	start := 0
	for i, end := range r.ends {
		r.recs[i].Value = r.arena[start:end:end]
		start = end
	}
	if len(r.recs) == 0 {
		return nil, r.err
	}
	r.started = true
	return r.recs, nil
}

// readLine appends the next line, without its line ending, to the arena,
// keeping at most maxLine+1 of its bytes, and returns the line's full
// length. It returns io.EOF when no line is left, or a read failure; an
// incomplete line cut short by a failure is not a line.
func (r *Reader) readLine() (int, error) {
	start := len(r.arena)
	keep := r.maxLine + 1
	total, seen := 0, false
	var last byte
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(frag) > 0 {
			seen = true
			if err == nil {
				frag = frag[:len(frag)-1] // the '\n'
			}
			if len(frag) > 0 {
				last = frag[len(frag)-1]
			}
			if room := keep - (len(r.arena) - start); room > 0 {
				r.arena = append(r.arena, frag[:min(room, len(frag))]...)
			}
			total += len(frag)
		}
		switch {
		case err == nil:
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && seen:
			// A last line without a final newline is still a line.
		case err == io.EOF:
			return 0, io.EOF
		case r.zr != nil:
			return 0, fmt.Errorf("file: %s: gzip stream is corrupt or truncated after line %d: %w", r.path, r.line, err)
		default:
			return 0, fmt.Errorf("file: %s: reading after line %d: %w", r.path, r.line, err)
		}
		break
	}
	if last == '\r' && total > 0 {
		total--
		if kept := len(r.arena) - start; kept > total {
			r.arena = r.arena[:start+total]
		}
	}
	return total, nil
}

// skip reads and discards the lines up to skipTo.
func (r *Reader) skip(ctx context.Context) error {
	for r.line < r.skipTo {
		if r.line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r.arena = r.arena[:0]
		if _, err := r.readLine(); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("file: %s: cannot resume at line %d: the file has only %d lines, so it changed since the checkpoint",
					r.path, r.skipTo+1, r.line)
			}
			r.err = err
			return err
		}
		r.line++
	}
	return nil
}

// blank tells whether b holds only whitespace.
func blank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\v', '\f':
		default:
			return false
		}
	}
	return true
}

// Close releases the file. Safe to call more than once.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	var errs []error
	if r.zr != nil {
		errs = append(errs, r.zr.Close())
	}
	errs = append(errs, r.f.Close())
	r.f, r.zr = nil, nil
	if r.err == nil {
		r.err = errClosed
	}
	return errors.Join(errs...)
}
