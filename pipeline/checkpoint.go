package pipeline

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
)

// checkpointVersion is the format version of checkpoint files.
const checkpointVersion = 4

// Checkpoints persists each partition's state with its input position, and
// the publisher's intent, under a state directory. Every file is written to
// a temporary name, fsynced and renamed into place: a checkpoint is either
// the old one or the new one, never half of each. Safe for concurrent use
// by different partitions.
type Checkpoints struct {
	dir string
}

// NewCheckpoints returns the checkpoint store under dir, creating it.
func NewCheckpoints(dir string) (*Checkpoints, error) {
	if dir == "" {
		return nil, errors.New("checkpoints: no state directory (set state_dir)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "partitions"), 0o750); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return &Checkpoints{dir: dir}, nil
}

// checkpoint is one partition's persisted state: everything its worker
// needs to continue as if it had never stopped.
type checkpoint struct {
	Version   int
	Partition PartitionID
	// Next is the next input position to read.
	Next      int64
	MaxSeen   int64
	ClosedEnd int64
	Acct      PartitionAccounting
	// ChainSeq is the partition's exclusion-log segment committed with
	// this checkpoint; a restart rolls the chain back to it.
	ChainSeq  int
	ChainHead string
	// Open are the open windows; their dedup keys are in their key logs
	// (keylog.go).
	Open []windowSnap
	// Handed are windows closed and handed to the publisher but not yet
	// published: a restart hands them over again.
	Handed []windowSnap
}

type windowSnap struct {
	W Window
	// Keys is how many keys of the window's key log belong to the
	// checkpoint (0 for a handed window, which needs no dedup set).
	Keys int64
	// Partials has one entry per dataset; gob cannot write a nil pointer
	// in a list, so a dataset without events in the window is an entry
	// with Present false.
	Partials []partialSnap
}

type partialSnap struct {
	Present bool
	Dataset string
	Events  int64
	Cells   []cellSnap
}

type cellSnap struct {
	Key CellKey
	WS  []contribSnap
}

// contribSnap is a contribution. Pseudonyms are byte strings (WS one, each
// of Sets its members end to end): gob writes an array byte by byte.
type contribSnap struct {
	WS       []byte
	Events   int64
	Sums     []int64
	Sets     [][]byte
	Overflow bool
}

// publishIntent records the dataset window the publisher is committing and
// its exclusion chain's segment before it, so that a restart can roll back
// the publish-time entries of a window whose manifest was never written.
type publishIntent struct {
	Dataset   string
	Window    Window
	SeqBefore int
}

func (s *Checkpoints) partitionPath(id PartitionID) string {
	return filepath.Join(s.dir, "partitions", url.PathEscape(id.String())+".ckpt")
}

func (s *Checkpoints) intentPath() string { return filepath.Join(s.dir, "publish.intent") }

// load reads a partition's checkpoint; ok is false when there is none.
func (s *Checkpoints) load(id PartitionID) (*checkpoint, bool, error) {
	var cp checkpoint
	ok, err := s.read(s.partitionPath(id), &cp)
	if err != nil || !ok {
		return nil, ok, err
	}
	if cp.Version != checkpointVersion {
		return nil, false, fmt.Errorf("checkpoints: %s is in format %d and this deid reads format %d; finish the run with the deid that wrote it, or start over with an empty state_dir and out",
			s.partitionPath(id), cp.Version, checkpointVersion)
	}
	if err := cp.check(); err != nil {
		return nil, false, damaged("%s: %v", s.partitionPath(id), err)
	}
	if cp.Partition != id {
		return nil, false, fmt.Errorf("checkpoints: %s holds partition %s; it is not this partition's checkpoint",
			s.partitionPath(id), cp.Partition)
	}
	return &cp, true, nil
}

// damaged is the error of a state directory whose content cannot be what
// deid wrote, with what to do about it.
func damaged(format string, args ...any) error {
	return fmt.Errorf("checkpoints: "+format+"; the state directory is damaged — restore it or start over with an empty state_dir and out", args...)
}

// check finds byte strings that are not whole keys or pseudonyms.
func (cp *checkpoint) check() error {
	for _, ws := range slices.Concat(cp.Open, cp.Handed) {
		if ws.Keys < 0 {
			return fmt.Errorf("window %d counts %d dedup keys", ws.W.Start, ws.Keys)
		}
		for _, ps := range ws.Partials {
			if !ps.Present {
				continue
			}
			for _, cs := range ps.Cells {
				for _, c := range cs.WS {
					if len(c.WS) != len(Pseudonym{}) {
						return fmt.Errorf("a workspace pseudonym of window %d is %d bytes", ws.W.Start, len(c.WS))
					}
					for _, set := range c.Sets {
						if len(set)%len(Pseudonym{}) != 0 {
							return fmt.Errorf("an entity set of window %d is %d bytes, not whole pseudonyms", ws.W.Start, len(set))
						}
					}
				}
			}
		}
	}
	return nil
}

// save writes cp and returns its size in bytes.
func (s *Checkpoints) save(cp *checkpoint) (int64, error) {
	cp.Version = checkpointVersion
	n, err := s.writeSized(s.partitionPath(cp.Partition), cp)
	return n, err
}

func (s *Checkpoints) loadIntent() (*publishIntent, bool, error) {
	var in publishIntent
	ok, err := s.read(s.intentPath(), &in)
	return &in, ok, err
}

func (s *Checkpoints) saveIntent(in *publishIntent) error {
	_, err := s.writeSized(s.intentPath(), in)
	return err
}

func (s *Checkpoints) read(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoints: %w", err)
	}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return false, damaged("%s is unreadable (%v)", path, err)
	}
	return true, nil
}

func (s *Checkpoints) writeSized(path string, v any) (int64, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return 0, fmt.Errorf("checkpoints: %w", err)
	}
	return int64(buf.Len()), s.writeBytes(path, buf.Bytes())
}

func (s *Checkpoints) writeBytes(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoints: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoints: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// snapWindow copies a window's partials into their checkpoint form, with
// keys, the number of its dedup keys made durable in its key log.
func snapWindow(ow *openWindow, keys int64) windowSnap {
	ws := windowSnap{W: ow.w, Keys: keys, Partials: make([]partialSnap, len(ow.partials))}
	for i, p := range ow.partials {
		if p != nil {
			ws.Partials[i] = snapPartial(p)
		}
	}
	return ws
}

func snapPartial(p *Partial) partialSnap {
	ps := partialSnap{Present: true, Dataset: p.Dataset, Events: p.Events}
	// In map order: a restore builds maps again, so order does not matter,
	// and sorting a window's cells at every checkpoint would cost more than
	// encoding them.
	for key, byWS := range p.content() {
		cs := cellSnap{Key: key}
		for ws, c := range byWS {
			s := contribSnap{WS: bytes.Clone(ws[:]), Events: c.Events, Sums: slices.Clone(c.Sums), Overflow: c.Overflow,
				Sets: make([][]byte, len(c.Sets))}
			for i := range c.Sets {
				s.Sets[i] = c.Sets[i].appendTo(nil)
			}
			cs.WS = append(cs.WS, s)
		}
		ps.Cells = append(ps.Cells, cs)
	}
	return ps
}

// restore rebuilds a window's state from its checkpoint form and its dedup
// keys, end to end (nil for a handed window).
func (ws *windowSnap) restore(keys []byte) *openWindow {
	n := len(keys) / len(dedupKey{})
	ow := &openWindow{w: ws.W, seen: newDedupSet(n), partials: make([]*Partial, len(ws.Partials))}
	for i := range n {
		ow.seen.Add(dedupKey(keys[i*len(dedupKey{}):]))
	}
	for i, ps := range ws.Partials {
		if !ps.Present {
			continue
		}
		p := NewPartial(ps.Dataset, ws.W)
		p.Events = ps.Events
		for _, cs := range ps.Cells {
			byWS := make(map[Pseudonym]*Contribution, len(cs.WS))
			for _, s := range cs.WS {
				c := &Contribution{Events: s.Events, Sums: slices.Clone(s.Sums), Overflow: s.Overflow, Sets: make([]EntitySet, len(s.Sets))}
				for j, set := range s.Sets {
					for k := 0; k+len(Pseudonym{}) <= len(set); k += len(Pseudonym{}) {
						c.Sets[j].Add(Pseudonym(set[k:]))
					}
				}
				byWS[Pseudonym(s.WS)] = c
			}
			p.Cells[cs.Key] = byWS
		}
		ow.partials[i] = p
	}
	return ow
}
