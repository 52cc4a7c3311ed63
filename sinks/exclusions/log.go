package exclusions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/internal/fsutil"
	"github.com/mya/deid/sinks/signing"
)

// File and directory permissions: the log holds raw workspace ids, for
// compliance only.
const (
	filePerm = 0o640
	dirPerm  = 0o750
)

// segmentName matches a committed segment's file name, sigName its
// signature's.
var (
	segmentName = regexp.MustCompile(`^segment-([0-9]{6,})\.parquet$`)
	sigName     = regexp.MustCompile(`^(segment-[0-9]{6,}\.parquet)\.sig$`)
)

// SegmentName returns the file name of segment seq: "segment-000042.parquet".
func SegmentName(seq int) string { return fmt.Sprintf("segment-%06d.parquet", seq) }

// Log is the exclusion log under <out>/exclusions: one directory of hash-
// chained segments per chain. It implements pipeline.ExclusionLog; Chain is
// safe for concurrent use, each chain it returns is not.
type Log struct {
	root  string
	codec compress.Compression
	dims  map[string][]string
	now   func() time.Time
	mem   memory.Allocator
	// signer, when set, signs every segment (WithSigner).
	signer signing.Signer
}

var _ pipeline.ExclusionLog = (*Log)(nil)

// New returns the exclusion log under cfg.Dir/exclusions. It creates nothing
// until the first commit.
func New(cfg Config, opts ...Option) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{root: filepath.Join(cfg.Dir, "exclusions"), codec: compress.Codecs.Snappy,
		dims: map[string][]string{}, now: time.Now, mem: memory.NewGoAllocator()}
	if cfg.Compression == CompressionZstd {
		l.codec = compress.Codecs.Zstd
	}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Chain opens the named chain, resuming it if it exists: it finds the
// newest segment, recomputes its hash as the head and continues its
// sequence. Temporary files of an interrupted commit are removed. Each call
// returns a new handle with nothing buffered; two handles of one chain
// cannot both commit the same sequence number (the second fails).
func (l *Log) Chain(name string) (pipeline.ExclusionChain, error) {
	c, err := l.open(name)
	if err != nil {
		return nil, fmt.Errorf("exclusions: chain %s: %w", name, err)
	}
	return c, nil
}

func (l *Log) open(name string) (*Chain, error) {
	if name == "" {
		return nil, errors.New("empty chain name")
	}
	c := &Chain{log: l, name: name, dir: filepath.Join(l.root, fsutil.EncodeName(name)),
		enc: &encoder{mem: l.mem, codec: l.codec, dims: l.dims}}
	if err := fsutil.RemoveTemps(c.dir); err != nil {
		return nil, err
	}
	segs, _, err := listSegments(c.dir)
	if err != nil {
		return nil, err
	}
	// A signature beyond the newest segment is left by a commit that died
	// between writing it and publishing its segment.
	if err := removeSigsAfter(c.dir, lastOf(segs)); err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return c, nil
	}
	last := segs[len(segs)-1]
	meta, err := ReadSegmentMeta(filepath.Join(c.dir, SegmentName(last)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SegmentName(last), err)
	}
	if meta.Chain != name || meta.Seq != last {
		return nil, fmt.Errorf("%s: records chain %q seq %d; the log directory was tampered with or copied",
			SegmentName(last), meta.Chain, meta.Seq)
	}
	head, err := fsutil.HashFile(meta.Path)
	if err != nil {
		return nil, err
	}
	c.seq, c.head = last, head
	if meta.Accounting != nil {
		if c.lastAcct, err = json.Marshal(meta.Accounting); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// listSegments returns the sequence numbers of a chain directory's
// segments, ascending, and the names of any other files (temporary files
// aside). A missing directory has none.
func listSegments(dir string) ([]int, []string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var seqs []int
	var other []string
	for _, e := range ents {
		m := segmentName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			if sigName.MatchString(e.Name()) && e.Type().IsRegular() {
				continue
			}
			if !fsutil.IsTemp(e.Name()) {
				other = append(other, e.Name())
			}
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || SegmentName(n) != e.Name() {
			other = append(other, e.Name())
			continue
		}
		seqs = append(seqs, n)
	}
	// By number: past 999999 a name has seven digits.
	slices.Sort(seqs)
	return seqs, other, nil
}

func lastOf(seqs []int) int {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

// removeSigsAfter removes the signature files of segments numbered above
// seq, which do not exist.
func removeSigsAfter(dir string, seq int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	removed := false
	for _, e := range ents {
		m := sigName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(segmentName.FindStringSubmatch(m[1])[1])
		if n > seq {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return fsutil.SyncDir(dir)
	}
	return nil
}

// Chain is one hash chain of segments. It implements
// pipeline.ExclusionChain. Not safe for concurrent use.
type Chain struct {
	log  *Log
	name string
	dir  string
	enc  *encoder

	seq      int
	head     string
	lastAcct []byte
	entries  []entry
	// strs interns the entries' repeated strings (see entry).
	strs map[string]string

	// hook, when set (tests), is called before the segment is published
	// and fails the commit with the error it returns.
	hook func() error
}

// Name returns the chain's name.
func (c *Chain) Name() string { return c.name }

// Head returns the hex SHA-256 of the newest committed segment, "" if none.
func (c *Chain) Head() string { return c.head }

// Seq returns the sequence number of the newest committed segment, 0 if
// none.
func (c *Chain) Seq() int { return c.seq }

// intern returns s, or an equal string appended before, so that the
// buffered entries of a segment share one copy of each event type and
// workspace id. The table is bounded; past it, strings are kept as given.
func (c *Chain) intern(s string) string {
	if t, ok := c.strs[s]; ok {
		return t
	}
	if c.strs == nil {
		c.strs = make(map[string]string)
	}
	if len(c.strs) < maxInterned {
		c.strs[s] = s
	}
	return s
}

// maxInterned bounds a chain's intern table.
const maxInterned = 1 << 14

// Append buffers a copy of e; nothing is visible until Commit. The caller
// may reuse e (and its Cell) afterwards. An entry without a reason, or whose
// cell disagrees with it, is refused.
func (c *Chain) Append(e *pipeline.Exclusion) error {
	if e.Reason == pipeline.ReasonNone {
		return fmt.Errorf("exclusions: chain %s: entry at %s has no reason", c.name, e.Pos)
	}
	en := entry{Exclusion: *e}
	en.Cell = nil
	en.EventType, en.WorkspaceID = c.intern(en.EventType), c.intern(en.WorkspaceID)
	if en.DecidedAt == 0 {
		en.DecidedAt = c.log.now().UnixMicro()
	}
	if e.Cell != nil {
		cell := *e.Cell
		switch {
		case cell.Reason != pipeline.ReasonNone && cell.Reason != e.Reason:
			return fmt.Errorf("exclusions: chain %s: cell reason %s differs from entry reason %s", c.name, cell.Reason, e.Reason)
		case cell.WorkspaceID != "" && e.WorkspaceID != "" && cell.WorkspaceID != e.WorkspaceID:
			return fmt.Errorf("exclusions: chain %s: cell workspace differs from entry workspace", c.name)
		}
		if en.WorkspaceID == "" {
			en.WorkspaceID = cell.WorkspaceID
		}
		cell.Reason, cell.WorkspaceID = e.Reason, en.WorkspaceID
		cell.Dims = slices.Clone(cell.Dims)
		en.Cell = &cell
	}
	c.entries = append(c.entries, en)
	return nil
}

// Commit writes the buffered entries as one segment recording acct when
// non-nil, and returns the new head. The segment is written under a
// temporary name, fsynced, published under its sequence number only if that
// name is free, and the directory fsynced. With nothing buffered it returns
// the current head when acct is nil or equal to the accounting last
// committed; otherwise it commits an empty segment to record acct. On error
// the entries stay buffered and Commit can be retried.
func (c *Chain) Commit(ctx context.Context, acct *pipeline.PartitionAccounting) (string, error) {
	head, err := c.commit(ctx, acct)
	if err != nil {
		return "", fmt.Errorf("exclusions: chain %s: %w", c.name, err)
	}
	return head, nil
}

func (c *Chain) commit(ctx context.Context, acct *pipeline.PartitionAccounting) (string, error) {
	var acctJSON []byte
	if acct != nil {
		var err error
		if acctJSON, err = json.Marshal(acct); err != nil {
			return "", err
		}
	}
	if len(c.entries) == 0 && (acct == nil || string(acctJSON) == string(c.lastAcct)) {
		return c.head, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := fsutil.MkdirAll(c.dir, dirPerm); err != nil {
		return "", err
	}
	meta := &SegmentMeta{Chain: c.name, Seq: c.seq + 1, PrevSHA256: c.head}
	f, err := fsutil.Create(c.dir, "segment", filePerm)
	if err != nil {
		return "", err
	}
	defer f.Abort()
	if err := c.enc.write(ctx, f, c.entries, meta, acctJSON); err != nil {
		return "", fmt.Errorf("writing %s: %w", SegmentName(meta.Seq), err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("writing %s: %w", SegmentName(meta.Seq), err)
	}
	// The signature goes in place before the segment, so a committed
	// segment is never unsigned; Chain removes it if the segment never
	// follows.
	if err := c.sign(meta.Seq, f.SHA256()); err != nil {
		return "", err
	}
	if c.hook != nil {
		if err := c.hook(); err != nil {
			return "", err
		}
	}
	err = f.Publish(SegmentName(meta.Seq))
	if errors.Is(err, fs.ErrExist) {
		// Our signature may have replaced the other writer's: sign what
		// is there.
		if c.log.signer != nil {
			if sum, herr := fsutil.HashFile(filepath.Join(c.dir, SegmentName(meta.Seq))); herr == nil {
				_ = c.sign(meta.Seq, sum)
			}
		}
		return "", fmt.Errorf("%s already exists: another writer advanced the chain: %w", SegmentName(meta.Seq), err)
	}
	if f.Placed() {
		// The segment is in the chain, even if fsyncing the directory
		// failed: the chain moves on, and the error is still reported.
		c.seq, c.head, c.lastAcct = meta.Seq, f.SHA256(), acctJSON
		clear(c.entries)
		c.entries = c.entries[:0]
	}
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", SegmentName(meta.Seq), err)
	}
	return c.head, nil
}

// sign writes the detached signature of segment seq, whose content hashes
// to sum, when the log has a signer.
func (c *Chain) sign(seq int, sum string) error {
	if c.log.signer == nil {
		return nil
	}
	name := SegmentName(seq)
	b, err := signing.Sign(c.log.signer, "exclusions/"+filepath.Base(c.dir)+"/"+name, sum)
	if err != nil {
		return err
	}
	sf, err := fsutil.Create(c.dir, "sig", filePerm)
	if err != nil {
		return err
	}
	defer sf.Abort()
	if _, err := sf.Write(b); err != nil {
		return fmt.Errorf("writing %s%s: %w", name, signing.Suffix, err)
	}
	if err := sf.Sync(); err != nil {
		return fmt.Errorf("writing %s%s: %w", name, signing.Suffix, err)
	}
	if err := sf.Rename(name + signing.Suffix); err != nil {
		return fmt.Errorf("writing %s%s: %w", name, signing.Suffix, err)
	}
	return nil
}
