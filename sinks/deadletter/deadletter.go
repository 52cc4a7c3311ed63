package deadletter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/internal/fsutil"
	"github.com/mya/deid/sinks/objstore"
)

// File and directory permissions: dead letters name input positions, and
// with dead_letters.keep_payload hold raw input.
const (
	filePerm = 0o600
	dirPerm  = 0o700
)

// Config configures the file-mode dead-letter sink.
type Config struct {
	// Dir is the output directory <out>; dead letters go to
	// <out>/dead-letters. cmd/deid sets it from the top-level out key or
	// --out.
	Dir string `yaml:"-"`
	// KeepPayload keeps malformed records' bytes in their dead letters,
	// for debugging (dead_letters.keep_payload; cmd/deid sets it from the
	// dead_letters section). See Retention for what is still withheld.
	KeepPayload bool `yaml:"-"`
}

// DefaultConfig returns the defaults: no payloads kept.
func DefaultConfig() Config { return Config{} }

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("out: must name the output directory (or pass --out)")
	}
	return nil
}

// Option configures what code injects into the sink.
type Option func(*Sink)

// WithExcluded gives the sink the consent state: f tells whether a
// workspace's records are excluded at this moment. It is required with
// KeepPayload and must be safe for concurrent use.
func WithExcluded(f func(workspaceID []byte) bool) Option {
	return func(s *Sink) { s.keep.Excluded = f }
}

// WithStore writes the dead letters to st, an output on object storage,
// instead of the directory cfg.Dir. An object cannot be appended to, so
// each Flush stores the partition's whole file again: the same name and
// the same bytes as in a directory, at the cost of rewriting it (dead
// letters are few and small: no payload by default).
func WithStore(st objstore.Store) Option { return func(s *Sink) { s.st = st } }

// Sink opens dead-letter writers. It implements pipeline.DeadLetterSink and
// is safe for concurrent use.
type Sink struct {
	dir  string
	keep Retention
	// st, when set, is the output on object storage (WithStore).
	st objstore.Store
}

var _ pipeline.DeadLetterSink = (*Sink)(nil)

// New returns a sink writing under cfg.Dir/dead-letters. It creates nothing
// until a writer is opened.
func New(cfg Config, opts ...Option) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{dir: filepath.Join(cfg.Dir, "dead-letters"), keep: Retention{KeepPayload: cfg.KeepPayload}}
	for _, o := range opts {
		o(s)
	}
	if s.keep.KeepPayload && s.keep.Excluded == nil {
		return nil, errors.New("dead_letters.keep_payload: the dead-letter sink has no consent state to withhold excluded workspaces' records with (WithExcluded)")
	}
	return s, nil
}

// Path returns the dead-letter file of a partition under outDir:
// <out>/dead-letters/<partition, encoded file-system-safe>.ndjson, e.g.
// "events-00.ndjson%5B0%5D.ndjson".
func Path(outDir string, id pipeline.PartitionID) string {
	return filepath.Join(outDir, "dead-letters", fsutil.EncodeName(id.String())+".ndjson")
}

// Writer opens the partition's dead-letter file for appending, creating it
// if needed. On an existing file it drops a torn last line and remembers
// the last offset written, so records up to it are not written again.
func (s *Sink) Writer(id pipeline.PartitionID) (pipeline.DeadLetterWriter, error) {
	w, err := s.open(id)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %s: %w", id, err)
	}
	return w, nil
}

func (s *Sink) open(id pipeline.PartitionID) (*Writer, error) {
	if s.st != nil {
		return s.openObject(id)
	}
	if err := fsutil.MkdirAll(s.dir, dirPerm); err != nil {
		return nil, err
	}
	path := filepath.Join(s.dir, fsutil.EncodeName(id.String())+".ndjson")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	w := &Writer{id: id, path: path, f: f, last: -1 << 63, keep: s.keep}
	if err := w.recover(); err != nil {
		f.Close()
		return nil, err
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// openObject opens the partition's dead-letter object: its content so far
// (but a torn last line, which a store that writes whole objects never
// has) and the last offset it holds.
func (s *Sink) openObject(id pipeline.PartitionID) (*Writer, error) {
	key := "dead-letters/" + fsutil.EncodeName(id.String()) + ".ndjson"
	w := &Writer{id: id, path: s.st.String() + "/" + key, st: s.st, key: key, last: -1 << 63, keep: s.keep}
	rc, err := s.st.Get(context.Background(), key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return w, nil
	case err != nil:
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	end, last, err := lastLine(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	w.content = b[:end]
	if last != nil {
		var l Line
		if err := json.Unmarshal(last, &l); err != nil {
			return nil, fmt.Errorf("last line of %s: %w", w.path, err)
		}
		w.last = l.Offset
	}
	return w, nil
}

// Writer appends one partition's dead letters to its file. It implements
// pipeline.DeadLetterWriter. Not safe for concurrent use.
type Writer struct {
	id   pipeline.PartitionID
	path string
	f    *os.File
	// st and key, on object storage, are where the file is stored whole;
	// content is what it holds.
	st      objstore.Store
	key     string
	content []byte
	closed  bool
	// size is the file's durable length: where the next Flush appends.
	size int64
	// last is the highest offset written or buffered.
	last int64
	buf  bytes.Buffer
	enc  *json.Encoder
	line Line
	keep Retention
}

// recover finds the end of the last complete line, truncates anything after
// it, and reads that line's offset.
func (w *Writer) recover() error {
	fi, err := w.f.Stat()
	if err != nil {
		return err
	}
	end, lastLine, err := lastLine(w.f, fi.Size())
	if err != nil {
		return err
	}
	if end != fi.Size() {
		// A torn line from a Flush that never completed: it was never
		// durable, and its record will be replayed.
		if err := w.f.Truncate(end); err != nil {
			return err
		}
		if err := w.f.Sync(); err != nil {
			return err
		}
	}
	w.size = end
	if lastLine != nil {
		var l Line
		if err := json.Unmarshal(lastLine, &l); err != nil {
			return fmt.Errorf("last line of %s: %w", w.path, err)
		}
		w.last = l.Offset
	}
	return nil
}

// lastLine returns the length of the file up to and including its last
// newline, and the last complete line (nil if none), reading backwards.
func lastLine(f io.ReaderAt, size int64) (int64, []byte, error) {
	const chunk = 64 << 10
	var tail []byte
	end := int64(-1)
	for pos := size; pos > 0; {
		n := min(chunk, pos)
		pos -= n
		b := make([]byte, n)
		if _, err := f.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
		tail = append(b, tail...)
		if end < 0 {
			i := bytes.LastIndexByte(tail, '\n')
			if i < 0 {
				continue
			}
			end = pos + int64(i) + 1
			tail = tail[:i]
		}
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
			return end, tail[i+1:], nil
		}
	}
	if end < 0 {
		return 0, nil, nil
	}
	return end, tail, nil
}

// Write buffers one dead letter: rec's position, the reason, and the
// length and SHA-256 of rec.Value — and, with KeepPayload and when
// Retention allows, a copy of rec.Value. A record at or below the last
// offset already in the file is skipped: it was written before a restart
// replayed it.
func (w *Writer) Write(rec pipeline.Record, reason *pipeline.MalformedError) error {
	if w.closed {
		return fmt.Errorf("dead letters: %s: write after close", w.id)
	}
	if rec.Pos.Offset <= w.last {
		return nil
	}
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.buf)
		w.enc.SetEscapeHTML(false)
	}
	w.line = w.keep.Letter(rec, reason)
	// Encoding copies a kept Value (as base64) into the buffer.
	err := w.enc.Encode(&w.line)
	w.line.Value = nil
	if err != nil {
		return fmt.Errorf("dead letters: %s: %w", w.id, err)
	}
	w.last = rec.Pos.Offset
	return nil
}

// Flush appends the buffered lines to the file and fsyncs it. If it fails,
// the file is cut back to what it was, the lines stay buffered, and Flush
// may be retried. ctx is checked before writing; the write itself is not
// interruptible.
func (w *Writer) Flush(ctx context.Context) error {
	if w.closed || w.buf.Len() == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.st != nil {
		// The whole file again, as one object; on failure the object
		// keeps its old content and the lines stay buffered.
		content := append(w.content[:len(w.content):len(w.content)], w.buf.Bytes()...)
		if err := w.st.Put(ctx, w.key, bytes.NewReader(content), objstore.PutOptions{}); err != nil {
			return fmt.Errorf("dead letters: %s: %w", w.id, err)
		}
		w.content = content
		w.buf.Reset()
		return nil
	}
	if _, err := w.f.WriteAt(w.buf.Bytes(), w.size); err != nil {
		w.f.Truncate(w.size)
		return fmt.Errorf("dead letters: %s: %w", w.id, err)
	}
	if err := w.f.Sync(); err != nil {
		w.f.Truncate(w.size)
		return fmt.Errorf("dead letters: %s: %w", w.id, err)
	}
	w.size += int64(w.buf.Len())
	w.buf.Reset()
	return nil
}

// Close flushes and closes the file. Safe to call more than once.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Flush(context.Background())
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
	}
	w.closed = true
	return err
}

// ReadAll reads a dead-letter file. A torn last line (without its newline,
// never made durable) is ignored, as a writer reopening the file drops it.
func ReadAll(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []Line
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return nil, err
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, n, err)
		}
		lines = append(lines, l)
	}
}
