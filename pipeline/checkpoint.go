package pipeline

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// checkpointVersion is the format version of checkpoints. Format 7 is a
// gob-encoded header followed by the windows' partials, appendPartial's
// bytes end to end, whose sizes the header gives; format 6 held the same
// bytes inside the gob value, which copied them once more on every
// checkpoint, and format 5 held gob-encoded snapshot structs. This deid
// refuses both. Since format 5
// checkpoints are immutable objects in a StateStore
// (checkpoints/<partition>/), the dedup keys runs beside them; format 4
// overwrote partitions/<partition>.ckpt and appended keys to a file per
// window.
const checkpointVersion = 7

// The layout of a state store:
//
//	checkpoints/<partition>/<seq>.ckpt                 a checkpoint, never rewritten
//	checkpoints/<partition>/keys/<window start>/<seq>-<n>.keys   a run of dedup keys (keylog.go)
//	publish.intent                                     the publisher's intent
//
// <seq> is the checkpoint's sequence number, 16 digits so that names sort
// as numbers. A checkpoint is written after every object it names and with
// a create-only put; once it is durable, the older checkpoints and the runs
// no checkpoint names any more are deleted. A restart takes the newest
// checkpoint, and deletes whatever a crash left after it (runs of a
// checkpoint never written).
const (
	checkpointsDir = "checkpoints/"
	checkpointExt  = ".ckpt"
	keysDir        = "keys/"
	intentKey      = "publish.intent"
	legacyStateDir = "partitions/"
	seqDigits      = 16
)

// Checkpoints persists each partition's state with its input position, and
// the publisher's intent, in a StateStore. Safe for concurrent use by
// different partitions; each partition's objects are its worker's alone.
type Checkpoints struct {
	store StateStore
	// fence, when set, is checked before every checkpoint is written: it
	// fails once another process has taken the state over.
	fence func(context.Context) error
}

// WithFence makes every checkpoint check fence first (the lease of a state
// store without a file lock), so that a process another one took the state
// over from writes no checkpoint more. It returns s.
func (s *Checkpoints) WithFence(fence func(context.Context) error) *Checkpoints {
	s.fence = fence
	return s
}

// NewCheckpoints returns the checkpoint store over store. It refuses a
// store that holds checkpoints of format 4.
func NewCheckpoints(ctx context.Context, store StateStore) (*Checkpoints, error) {
	if store == nil {
		return nil, errors.New("checkpoints: no state store (set state_dir)")
	}
	old, err := store.List(ctx, legacyStateDir)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	if len(old) > 0 {
		return nil, fmt.Errorf("checkpoints: %s holds checkpoints in format 4 (%s), which this deid does not read (it writes format %d, under %s); finish the run with the deid that wrote them, or start over with an empty state_dir and out",
			store, old[0], checkpointVersion, checkpointsDir)
	}
	return &Checkpoints{store: store}, nil
}

// checkpoint is one partition's persisted state: everything its worker
// needs to continue as if it had never stopped. Its gob encoding is the
// header of the object; the windows' partials follow it (encodeCheckpoint).
type checkpoint struct {
	Version   int
	Partition PartitionID
	// Seq numbers the partition's checkpoints from 1; it names the object.
	Seq int64
	// Next is the next input position to read.
	Next      int64
	MaxSeen   int64
	ClosedEnd int64
	Acct      PartitionAccounting
	// ChainSeq is the partition's exclusion-log segment committed with
	// this checkpoint; a restart rolls the chain back to it.
	ChainSeq  int
	ChainHead string
	// Open are the open windows; their dedup keys are in their key runs
	// (keylog.go).
	Open []windowSnap
	// Handed are windows closed and handed to the publisher but not yet
	// published: a restart hands them over again.
	Handed []windowSnap
}

// snaps yields the checkpoint's windows in place, Open then Handed: the
// order their partials follow the header in.
func (cp *checkpoint) snaps() iter.Seq[*windowSnap] {
	return func(yield func(*windowSnap) bool) {
		for _, list := range [][]windowSnap{cp.Open, cp.Handed} {
			for i := range list {
				if !yield(&list[i]) {
					return
				}
			}
		}
	}
}

type windowSnap struct {
	W Window
	// Keys is how many dedup keys the window has at the checkpoint (0 for
	// a handed window, which needs no dedup set): the sum of its runs'.
	Keys int64
	// Runs hold the keys, oldest first.
	Runs []keyRun
	// Sizes has one entry per dataset: the length of its partial's bytes,
	// 0 for a dataset without events in the window. encodeCheckpoint sets
	// it from partials; it is what the header says of them.
	Sizes []int
	// partials has one entry per dataset, appendPartial's bytes, empty for
	// a dataset without events in the window. They are not part of the
	// gob header but follow it, in the order of Open then Handed.
	partials [][]byte
}

// publishIntent records the dataset window the publisher is committing and
// its exclusion chain's segment before it, so that a restart can roll back
// the publish-time entries of a window whose manifest was never written.
type publishIntent struct {
	Dataset   string
	Window    Window
	SeqBefore int
}

// partitionState is one partition's part of the checkpoint store: the
// sequence of its checkpoints, and the objects to delete once the next one
// is durable. Owned by the partition's worker; not safe for concurrent use.
type partitionState struct {
	s      *Checkpoints
	id     PartitionID
	prefix string
	// seq is the last checkpoint written or restored, 0 for none.
	seq int64
	// runs counts the key runs written for checkpoint seq+1.
	runs int
	// garbage are objects the next checkpoint makes unneeded: the last
	// checkpoint, runs merged into others, runs of closed windows.
	garbage []string
	// spareKeys is the pending-keys buffer of the last window closed,
	// which the next window opened takes: a buffer grown from nothing in
	// every new window costs its page faults again.
	spareKeys []byte
	// deferGC leaves the garbage for collect, after the new checkpoint's
	// name is committed to the consumer group (a job of several
	// instances): until then the committed checkpoint is the older one.
	deferGC bool
}

func (s *Checkpoints) partition(id PartitionID) *partitionState {
	return &partitionState{s: s, id: id, prefix: checkpointsDir + url.PathEscape(id.String()) + "/"}
}

func formatSeq(seq int64) string {
	return fmt.Sprintf("%0*d", seqDigits, seq)
}

func (p *partitionState) checkpointKey(seq int64) string {
	return p.prefix + formatSeq(seq) + checkpointExt
}

// load reads the partition's newest checkpoint (ok is false when there is
// none) and deletes every object of the partition it does not name: older
// checkpoints, and runs written after it by a run that crashed before its
// next checkpoint.
func (p *partitionState) load(ctx context.Context) (*checkpoint, bool, error) {
	return p.loadPicked(ctx, false, "")
}

// loadNamed is load for a job of several instances, where the checkpoint
// named in the group's offset-commit metadata is the partition's state, not
// the newest one in the store: a newer one is a fenced owner's, never
// committed. An empty name means no checkpoint was ever committed: every
// object of the partition goes. Sequence numbers continue from the
// generation's base (gen << 24), above any that an older generation's owner
// can still write, so two owners never write the same key.
func (p *partitionState) loadNamed(ctx context.Context, name string, gen int32) (*checkpoint, bool, error) {
	cp, ok, err := p.loadPicked(ctx, true, name)
	if err == nil {
		p.seq = max(p.seq, int64(gen)<<lineageSeqBits)
		p.deferGC = true
	}
	return cp, ok, err
}

func (p *partitionState) loadPicked(ctx context.Context, named bool, name string) (*checkpoint, bool, error) {
	keys, err := p.s.store.List(ctx, p.prefix)
	if err != nil {
		return nil, false, fmt.Errorf("checkpoints: %w", err)
	}
	var newest string
	var newestSeq int64
	for _, k := range keys {
		name := strings.TrimPrefix(k, p.prefix)
		if strings.Contains(name, "/") || !strings.HasSuffix(name, checkpointExt) {
			continue
		}
		seq, err := strconv.ParseInt(strings.TrimSuffix(name, checkpointExt), 10, 64)
		if err != nil || seq <= 0 {
			return nil, false, damaged("%s is not a checkpoint's name", k)
		}
		if seq > newestSeq {
			newest, newestSeq = k, seq
		}
	}
	if named {
		newest, newestSeq = "", 0
		if name != "" {
			if !strings.HasPrefix(name, p.prefix) || !slices.Contains(keys, name) {
				return nil, false, fmt.Errorf("checkpoints: the consumer group's committed offset of %s names checkpoint %q, which %s does not hold: "+
					"the state store is not this job's, or damaged; point state_dir at the job's state, or start over with a new state_dir, out and consumer group", p.id, name, p.s.store)
			}
			newest, newestSeq = name, lineageSeq(name)
		}
	}
	var cp *checkpoint
	keep := map[string]bool{}
	if newest != "" {
		var ok bool
		cp, ok, err = p.s.readCheckpoint(ctx, newest)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, damaged("%s was listed but cannot be read", newest)
		}
		if cp.Version != checkpointVersion {
			return nil, false, fmt.Errorf("checkpoints: %s is in format %d and this deid reads format %d; finish the run with the deid that wrote it, or start over with an empty state_dir and out",
				newest, cp.Version, checkpointVersion)
		}
		if err := cp.check(); err != nil {
			return nil, false, damaged("%s: %v", newest, err)
		}
		if cp.Partition != p.id {
			return nil, false, fmt.Errorf("checkpoints: %s holds partition %s; it is not this partition's checkpoint",
				newest, cp.Partition)
		}
		if cp.Seq != newestSeq {
			return nil, false, damaged("%s holds checkpoint %d", newest, cp.Seq)
		}
		keep[newest] = true
		for _, ws := range cp.Open {
			for _, r := range ws.Runs {
				keep[p.runKey(ws.W.Start, r)] = true
			}
		}
		p.seq = cp.Seq
	}
	for _, k := range keys {
		if !keep[k] {
			if err := p.s.store.Delete(ctx, k); err != nil {
				return nil, false, fmt.Errorf("checkpoints: %w", err)
			}
		}
	}
	return cp, cp != nil, nil
}

// damaged is the error of a state directory whose content cannot be what
// deid wrote, with what to do about it.
func damaged(format string, args ...any) error {
	return fmt.Errorf("checkpoints: "+format+"; the state directory is damaged — restore it or start over with an empty state_dir and out", args...)
}

// check finds byte strings that are not whole keys or pseudonyms, and key
// counts that disagree with their runs.
func (cp *checkpoint) check() error {
	for ws := range cp.snaps() {
		if ws.Keys < 0 {
			return fmt.Errorf("window %d counts %d dedup keys", ws.W.Start, ws.Keys)
		}
		var inRuns int64
		for _, r := range ws.Runs {
			if r.Keys <= 0 || r.Seq <= 0 || r.Seq > cp.Seq || r.N < 0 {
				return fmt.Errorf("window %d names a run %d-%d of %d keys", ws.W.Start, r.Seq, r.N, r.Keys)
			}
			inRuns += r.Keys
		}
		if inRuns != ws.Keys {
			return fmt.Errorf("window %d counts %d dedup keys but its runs hold %d", ws.W.Start, ws.Keys, inRuns)
		}
	}
	return nil
}

// save writes cp as the partition's next checkpoint, after the runs it
// names, and returns its size in bytes and its key. Once it is durable, the
// objects it made unneeded are deleted.
func (p *partitionState) save(ctx context.Context, cp *checkpoint) (int64, string, error) {
	cp.Version = checkpointVersion
	cp.Seq = p.seq + 1
	b, err := encodeCheckpoint(cp)
	if err != nil {
		return 0, "", err
	}
	if p.s.fence != nil {
		if err := p.s.fence(ctx); err != nil {
			return 0, "", fmt.Errorf("checkpoints: %w", err)
		}
	}
	// Create-only: a checkpoint is never rewritten, so a second writer of
	// the partition is refused rather than overwriting this one's.
	if err := p.s.store.Put(ctx, p.checkpointKey(cp.Seq), b, true); err != nil {
		if errors.Is(err, ErrStateExists) {
			return 0, "", fmt.Errorf("checkpoints: %s was written by another process; two runs share this state (%w)", p.checkpointKey(cp.Seq), err)
		}
		return 0, "", fmt.Errorf("checkpoints: %w", err)
	}
	if p.seq > 0 {
		p.garbage = append(p.garbage, p.checkpointKey(p.seq))
	}
	p.seq, p.runs = cp.Seq, 0
	if !p.deferGC {
		if err := p.collect(ctx); err != nil {
			return 0, "", err
		}
	}
	return int64(len(b)), p.checkpointKey(cp.Seq), nil
}

// collect deletes the objects the newest checkpoint made unneeded.
func (p *partitionState) collect(ctx context.Context) error {
	for _, k := range p.garbage {
		if err := p.s.store.Delete(ctx, k); err != nil {
			return fmt.Errorf("checkpoints: %w", err)
		}
	}
	p.garbage = p.garbage[:0]
	return nil
}

func (s *Checkpoints) loadIntent(ctx context.Context) (*publishIntent, bool, error) {
	var in publishIntent
	ok, err := s.read(ctx, intentKey, &in)
	return &in, ok, err
}

func (s *Checkpoints) saveIntent(ctx context.Context, in *publishIntent) error {
	return s.write(ctx, intentKey, in)
}

// write encodes v and puts it at key, replacing what is there.
func (s *Checkpoints) write(ctx context.Context, key string, v any) error {
	b, err := encode(v)
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, key, b, false); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	return nil
}

func (s *Checkpoints) read(ctx context.Context, key string, v any) (bool, error) {
	b, err := s.store.Get(ctx, key)
	if errors.Is(err, ErrStateNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoints: %w", err)
	}
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return false, damaged("%s in %s is unreadable (%v)", key, s.store, err)
	}
	return true, nil
}

// encodeCheckpoint writes cp's gob header, with each window's Sizes set
// from its partials, then the partials end to end, Open before Handed,
// into one buffer sized for them.
func encodeCheckpoint(cp *checkpoint) ([]byte, error) {
	n := 0
	for ws := range cp.snaps() {
		ws.Sizes = make([]int, len(ws.partials))
		for d, p := range ws.partials {
			ws.Sizes[d] = len(p)
			n += len(p)
		}
	}
	var buf bytes.Buffer
	buf.Grow(n + 4<<10)
	if err := gob.NewEncoder(&buf).Encode(cp); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	for ws := range cp.snaps() {
		for _, p := range ws.partials {
			buf.Write(p)
		}
	}
	return buf.Bytes(), nil
}

// readCheckpoint reads the checkpoint at key (ok is false when there is
// none). A checkpoint of another format comes back with only its Version
// set, for the caller to refuse by name.
func (s *Checkpoints) readCheckpoint(ctx context.Context, key string) (cp *checkpoint, ok bool, err error) {
	b, err := s.store.Get(ctx, key)
	if errors.Is(err, ErrStateNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("checkpoints: %w", err)
	}
	cp, err = decodeCheckpoint(b)
	if errors.Is(err, errUnreadable) {
		return nil, false, damaged("%s in %s %v", key, s.store, err)
	}
	if err != nil {
		return nil, false, damaged("%s: %v", key, err)
	}
	return cp, true, nil
}

// errUnreadable is decodeCheckpoint's error for a header gob cannot read.
var errUnreadable = errors.New("is unreadable")

// decodeCheckpoint reads what encodeCheckpoint wrote. A checkpoint of
// another format comes back with only its Version set.
func decodeCheckpoint(b []byte) (*checkpoint, error) {
	r := bytes.NewReader(b)
	cp := &checkpoint{}
	if err := gob.NewDecoder(r).Decode(cp); err != nil {
		// Another format's fields may not decode into this one's: name
		// the format rather than call it damaged.
		var head struct{ Version int }
		if gob.NewDecoder(bytes.NewReader(b)).Decode(&head) == nil && head.Version != checkpointVersion {
			return &checkpoint{Version: head.Version}, nil
		}
		return nil, fmt.Errorf("%w (%v)", errUnreadable, err)
	}
	if cp.Version != checkpointVersion {
		return cp, nil
	}
	// The decoder reads a bytes.Reader message by message, never past the
	// header: what is left are the partials.
	if err := cp.attach(b[len(b)-r.Len():]); err != nil {
		return nil, err
	}
	return cp, nil
}

// attach cuts rest, the bytes after the header, into the windows'
// partials by their Sizes; they must account for every byte.
func (cp *checkpoint) attach(rest []byte) error {
	for ws := range cp.snaps() {
		ws.partials = make([][]byte, len(ws.Sizes))
		for d, n := range ws.Sizes {
			if n < 0 || n > len(rest) {
				return fmt.Errorf("window %d's partial %d is %d bytes, and %d remain", ws.W.Start, d, n, len(rest))
			}
			ws.partials[d], rest = rest[:n:n], rest[n:]
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the windows' partials", len(rest))
	}
	return nil
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	return buf.Bytes(), nil
}

// snapWindow writes a window's partials in their checkpoint form
// (appendPartial), with keys, the number of its dedup keys made durable in
// runs (its key log's).
func snapWindow(ow *openWindow, keys int64, runs []keyRun) windowSnap {
	ws := windowSnap{W: ow.w, Keys: keys, Runs: runs, partials: make([][]byte, len(ow.partials))}
	for i, p := range ow.partials {
		if p != nil {
			ws.partials[i] = appendPartial(make([]byte, 0, partialSizeHint(p)), p)
		}
	}
	return ws
}

// restore rebuilds a window's state from its checkpoint form and its dedup
// keys, end to end (nil for a handed window). Its partials are checked
// here, as they are decoded, not when the checkpoint is loaded.
func (ws *windowSnap) restore(keys []byte) (*openWindow, error) {
	n := len(keys) / len(dedupKey{})
	ow := &openWindow{w: ws.W, seen: newDedupSet(n), partials: make([]*Partial, len(ws.partials))}
	for i := range n {
		ow.seen.Add(dedupKey(keys[i*len(dedupKey{}):]))
	}
	for i, b := range ws.partials {
		if len(b) == 0 {
			continue
		}
		p, err := decodePartial(b, ws.W)
		if err != nil {
			return nil, err
		}
		ow.partials[i] = p
	}
	return ow, nil
}
