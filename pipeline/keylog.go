package pipeline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A window's dedup keys are checkpointed incrementally. Each open window of
// a partition has a key log beside the partition's checkpoint: its keys in
// the order they were added, 16 bytes each, appended as the worker adds
// them. A checkpoint makes the logs durable first, then records how many
// keys of each log belong to it; on restart the worker reads that many and
// drops the rest (added after the checkpoint, they come back as the input
// is read again from its position). So a checkpoint writes the keys added
// since the one before, not the whole set again: its cost follows the
// events between checkpoints rather than the size of the open windows. A
// window's log is removed once a checkpoint without the window is durable.

// keyLog is the key log of one open window. Not safe for concurrent use.
type keyLog struct {
	path string
	f    *os.File
	w    *bufio.Writer
	// n counts the keys in the log, buffered ones included.
	n int64
	// err is the first write failure; sync reports it.
	err error
}

// keyLogBuffer is the write buffer of a key log.
const keyLogBuffer = 64 << 10

// keyLogSuffix ends a key log's name: <partition>.w<window start>.keys.
const keyLogSuffix = ".keys"

func keyLogPrefix(id PartitionID) string {
	return url.PathEscape(id.String()) + ".w"
}

func (s *Checkpoints) keyLogPath(id PartitionID, start int64) string {
	return filepath.Join(s.dir, "partitions", keyLogPrefix(id)+strconv.FormatInt(start, 10)+keyLogSuffix)
}

// openKeyLog opens the key log of partition id's window starting at start
// for appending after its first keep keys, dropping any after them; a log
// that is not there is created (keep must then be 0).
func (s *Checkpoints) openKeyLog(id PartitionID, start, keep int64) (*keyLog, error) {
	path := s.keyLogPath(id, start)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	size := keep * int64(len(dedupKey{}))
	if err = f.Truncate(size); err == nil {
		_, err = f.Seek(size, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return &keyLog{path: path, f: f, w: bufio.NewWriterSize(f, keyLogBuffer), n: keep}, nil
}

// add appends k.
func (l *keyLog) add(k dedupKey) {
	if l.err == nil {
		_, l.err = l.w.Write(k[:])
	}
	l.n++
}

// sync makes every key added so far durable and returns their number.
func (l *keyLog) sync() (int64, error) {
	if l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err == nil {
		l.err = l.f.Sync()
	}
	if l.err != nil {
		return 0, fmt.Errorf("checkpoints: key log %s: %w", l.path, l.err)
	}
	return l.n, nil
}

// close closes the log, keeping its file.
func (l *keyLog) close() { l.f.Close() }

// remove closes the log and removes its file.
func (l *keyLog) remove() error {
	l.f.Close()
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoints: %w", err)
	}
	return nil
}

// readKeys returns the first n keys of partition id's window starting at
// start, end to end.
func (s *Checkpoints) readKeys(id PartitionID, start, n int64) ([]byte, error) {
	path := s.keyLogPath(id, start)
	f, err := os.Open(path)
	if err != nil {
		return nil, damaged("the checkpoint counts %d dedup keys of window %d but its key log is unreadable (%w)", n, start, err)
	}
	defer f.Close()
	keys := make([]byte, n*int64(len(dedupKey{})))
	if _, err := io.ReadFull(f, keys); err != nil {
		return nil, damaged("%s holds fewer than the %d dedup keys its checkpoint counts (%v)", path, n, err)
	}
	return keys, nil
}

// removeKeyLogs removes partition id's key logs of every window not in keep:
// logs of windows closed, or opened after the last checkpoint, before a
// crash.
func (s *Checkpoints) removeKeyLogs(id PartitionID, keep map[int64]bool) error {
	dir := filepath.Join(s.dir, "partitions")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	prefix := keyLogPrefix(id)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, keyLogSuffix) {
			continue
		}
		start, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, prefix), keyLogSuffix), 10, 64)
		if err != nil || keep[start] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checkpoints: %w", err)
		}
	}
	return nil
}
