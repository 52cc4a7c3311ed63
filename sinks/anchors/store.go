package anchors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mya/deid/sinks/objstore"
)

// Store is an anchor log on object storage (anchors.file given as
// s3://bucket/prefix), where nothing can be appended to: each line is an
// object of its own, <20-digit number>.ndjson, created with a conditional
// create so that no line ever replaces another, in the order of the
// numbers. Read in that order, the objects are the lines a file would
// hold. Objects that are never rewritten suit a bucket with object lock
// (write once, read many), another trust domain than the output's.
type Store struct {
	st  objstore.Store
	now func() time.Time

	mu   sync.Mutex
	next uint64
}

var _ Anchorer = (*Store)(nil)

// lineKey is the object of line n.
func lineKey(n uint64) string { return fmt.Sprintf("%020d.ndjson", n) }

// lineNumbers lists the numbers of st's line objects, ascending.
func lineNumbers(ctx context.Context, st objstore.Store) ([]uint64, error) {
	infos, err := st.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var ns []uint64
	for _, in := range infos {
		n, err := strconv.ParseUint(strings.TrimSuffix(in.Key, ".ndjson"), 10, 64)
		if err != nil || lineKey(n) != in.Key {
			continue
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// OpenStore opens the anchor log in st, after its newest line.
func OpenStore(ctx context.Context, st objstore.Store) (*Store, error) {
	ns, err := lineNumbers(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("anchors: %s: %w", st, err)
	}
	s := &Store{st: st, now: time.Now, next: 1}
	if len(ns) > 0 {
		s.next = ns[len(ns)-1] + 1
	}
	return s, nil
}

// Anchor stores l as the log's next line, its Time set to now when zero.
// A number another writer took meanwhile is skipped.
func (s *Store) Anchor(ctx context.Context, l Line) error {
	if l.Time.IsZero() {
		l.Time = s.now()
	}
	l.Time = l.Time.UTC()
	b, err := json.Marshal(&l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 100 {
		err := s.st.Put(ctx, lineKey(s.next), bytes.NewReader(b), objstore.PutOptions{IfNotExists: true})
		if errors.Is(err, objstore.ErrExists) {
			s.next++
			continue
		}
		if err != nil {
			return fmt.Errorf("anchors: storing line %d in %s: %w", s.next, s.st, err)
		}
		s.next++
		return nil
	}
	return fmt.Errorf("anchors: %s: 100 line numbers in a row were taken: another process is writing this anchor log", s.st)
}

// ReadStore reads the anchor log in st (see Read): its line objects in
// order, as one file.
func ReadStore(ctx context.Context, st objstore.Store) ([]Line, bool, error) {
	var all bytes.Buffer
	if err := CopyStore(ctx, st, &all); err != nil {
		return nil, false, err
	}
	lines, torn, err := Read(&all)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", st, err)
	}
	return lines, torn, nil
}

// CopyStore writes the anchor log in st to w as the file it stands for:
// its line objects' bytes, in order.
func CopyStore(ctx context.Context, st objstore.Store, w io.Writer) error {
	ns, err := lineNumbers(ctx, st)
	if err != nil {
		return fmt.Errorf("%s: %w", st, err)
	}
	for _, n := range ns {
		rc, err := st.Get(ctx, lineKey(n))
		if err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", st, lineKey(n), err)
		}
	}
	return nil
}
