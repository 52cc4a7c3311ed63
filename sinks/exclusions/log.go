package exclusions

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/internal/fsutil"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/signing"
)

// private writes the log's objects readable by owner and group only in a
// directory (0640, directories 0750): the log holds raw workspace ids, for
// compliance only.
var private = objstore.PutOptions{Private: true}

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
	// st is the output <out>, a directory or s3://bucket/prefix; the log
	// is under its key "exclusions".
	st    objstore.Store
	codec compress.Compression
	dims  map[string][]string
	now   func() time.Time
	mem   memory.Allocator
	// signer, when set, signs every segment (WithSigner).
	signer signing.Signer
	// anchor, when set, receives one line per committed segment and per
	// rollback (WithAnchors).
	anchor anchors.Anchorer
}

var _ pipeline.ExclusionLog = (*Log)(nil)

// New returns the exclusion log under cfg.Dir/exclusions. It creates nothing
// until the first commit.
func New(cfg Config, opts ...Option) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{codec: compress.Codecs.Snappy,
		dims: map[string][]string{}, now: time.Now, mem: memory.NewGoAllocator()}
	if cfg.Compression == CompressionZstd {
		l.codec = compress.Codecs.Zstd
	}
	for _, o := range opts {
		o(l)
	}
	if l.st == nil {
		st, err := objstore.NewLocal(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("exclusions: %w", err)
		}
		l.st = st
	}
	return l, nil
}

// ChainDir returns the directory of the named chain under <out>/exclusions:
// the name encoded injectively into one file-system-safe path element
// ("events-00.ndjson[0]" → "events-00.ndjson%5B0%5D").
func ChainDir(outDir, name string) string {
	return filepath.Join(outDir, "exclusions", fsutil.EncodeName(name))
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
	ctx := context.Background()
	c := &Chain{log: l, name: name, dir: "exclusions/" + fsutil.EncodeName(name),
		enc: &encoder{mem: l.mem, codec: l.codec, dims: l.dims}}
	if t, ok := l.st.(interface{ RemoveTemps(string) error }); ok {
		if err := t.RemoveTemps(c.dir); err != nil {
			return nil, err
		}
	}
	segs, sigs, err := c.list(ctx)
	if err != nil {
		return nil, err
	}
	// A signature beyond the newest segment is left by a commit that died
	// between writing it and publishing its segment.
	if err := c.removeSigsAfter(ctx, sigs, lastOf(segs)); err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return c, nil
	}
	last := segs[len(segs)-1]
	meta, head, err := c.readMeta(ctx, last)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SegmentName(last), err)
	}
	if meta.Chain != name || meta.Seq != last {
		return nil, fmt.Errorf("%s: records chain %q seq %d; the log directory was tampered with or copied",
			SegmentName(last), meta.Chain, meta.Seq)
	}
	c.seq, c.head = last, head
	if meta.Accounting != nil {
		if c.lastAcct, err = json.Marshal(meta.Accounting); err != nil {
			return nil, err
		}
	}
	// A crash between the newest segment's commit and its anchor left it
	// unanchored: anchor it again (an exact duplicate otherwise).
	if err := c.anchorLine(context.Background(), anchors.EventCommit, last, head, meta.PrevSHA256); err != nil {
		return nil, err
	}
	return c, nil
}

// anchorLine appends an anchor of this chain, when the log has an anchor
// log.
func (c *Chain) anchorLine(ctx context.Context, event string, seq int, sum, prev string) error {
	if c.log.anchor == nil {
		return nil
	}
	err := c.log.anchor.Anchor(context.WithoutCancel(ctx), anchors.Line{Kind: anchors.KindChain, Name: c.name,
		Seq: seq, Event: event, SHA256: sum, Prev: prev})
	if err != nil {
		return fmt.Errorf("anchoring segment %d: %w", seq, err)
	}
	return nil
}

// list returns the sequence numbers of the chain's segments, ascending,
// and those of its signatures. A chain never committed has none.
func (c *Chain) list(ctx context.Context) (segs, sigs []int, err error) {
	infos, err := c.log.st.List(ctx, c.dir+"/")
	if err != nil {
		return nil, nil, err
	}
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, c.dir+"/")
		if m := segmentName.FindStringSubmatch(name); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && SegmentName(n) == name {
				segs = append(segs, n)
			}
		} else if m := sigName.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(segmentName.FindStringSubmatch(m[1])[1])
			sigs = append(sigs, n)
		}
	}
	// By number: past 999999 a name has seven digits.
	slices.Sort(segs)
	return segs, sigs, nil
}

// readMeta reads segment seq's metadata, and the hex SHA-256 of its bytes.
func (c *Chain) readMeta(ctx context.Context, seq int) (*SegmentMeta, string, error) {
	key := c.dir + "/" + SegmentName(seq)
	b, err := c.get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	defer rdr.Close()
	meta, err := segmentMeta(key, rdr)
	if err != nil {
		return nil, "", err
	}
	return meta, sha256Hex(b), nil
}

// get reads the whole object under key.
func (c *Chain) get(ctx context.Context, key string) ([]byte, error) {
	rc, err := c.log.st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func lastOf(seqs []int) int {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

// removeSigsAfter removes the signatures (of sigs) of segments numbered
// above seq, which do not exist.
func (c *Chain) removeSigsAfter(ctx context.Context, sigs []int, seq int) error {
	for _, n := range sigs {
		if n > seq {
			if err := c.log.st.Delete(ctx, c.dir+"/"+SegmentName(n)+signing.Suffix); err != nil {
				return err
			}
		}
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
	meta := &SegmentMeta{Chain: c.name, Seq: c.seq + 1, PrevSHA256: c.head}
	var b bytes.Buffer
	if err := c.enc.write(ctx, &b, c.entries, meta, acctJSON); err != nil {
		return "", fmt.Errorf("writing %s: %w", SegmentName(meta.Seq), err)
	}
	sum := sha256Hex(b.Bytes())
	// The signature goes in place before the segment, so a committed
	// segment is never unsigned; Chain removes it if the segment never
	// follows.
	if err := c.sign(ctx, meta.Seq, sum); err != nil {
		return "", err
	}
	if c.hook != nil {
		if err := c.hook(); err != nil {
			return "", err
		}
	}
	key := c.dir + "/" + SegmentName(meta.Seq)
	err := c.log.st.Put(ctx, key, bytes.NewReader(b.Bytes()), objstore.PutOptions{IfNotExists: true, Private: true})
	if errors.Is(err, objstore.ErrExists) {
		// Our signature may have replaced the other writer's: sign what
		// is there.
		if c.log.signer != nil {
			if theirs, gerr := c.get(context.WithoutCancel(ctx), key); gerr == nil {
				_ = c.sign(context.WithoutCancel(ctx), meta.Seq, sha256Hex(theirs))
			}
		}
		return "", fmt.Errorf("%s already exists: %w: %w", SegmentName(meta.Seq), pipeline.ErrChainAdvanced, err)
	}
	placed := err == nil
	if err != nil {
		// The segment may be in place though the store said otherwise
		// (a directory's fsync failed): then it is in the chain.
		if theirs, gerr := c.get(context.WithoutCancel(ctx), key); gerr == nil && sha256Hex(theirs) == sum {
			placed = true
		}
	}
	if placed {
		// The segment is in the chain, even if the write reported an
		// error: the chain moves on, and the error is still reported.
		c.seq, c.head, c.lastAcct = meta.Seq, sum, acctJSON
		clear(c.entries)
		c.entries = c.entries[:0]
	}
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", SegmentName(meta.Seq), err)
	}
	// Committed: anchor it before saying so. If this fails, the restart
	// anchors it again (open).
	if err := c.anchorLine(ctx, anchors.EventCommit, meta.Seq, c.head, meta.PrevSHA256); err != nil {
		return "", err
	}
	return c.head, nil
}

// sign writes the detached signature of segment seq, whose content hashes
// to sum, when the log has a signer.
func (c *Chain) sign(ctx context.Context, seq int, sum string) error {
	if c.log.signer == nil {
		return nil
	}
	name := SegmentName(seq)
	b, err := signing.Sign(c.log.signer, c.dir+"/"+name, sum)
	if err != nil {
		return err
	}
	if err := c.log.st.Put(ctx, c.dir+"/"+name+signing.Suffix, bytes.NewReader(b), private); err != nil {
		return fmt.Errorf("writing %s%s: %w", name, signing.Suffix, err)
	}
	return nil
}
