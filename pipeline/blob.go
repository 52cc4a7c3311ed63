package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// In a job of several instances a closed window's partials travel from
// stage 1 to stage 2 as blobs in the state store:
//
//	partials/<dataset>/<window start>/<partition>-<sha256>.partial
//
// A blob is named by its content, so writing it again (a replay after a
// crash or a takeover) writes the same object, and a close record names the
// blob with its SHA-256, which stage 2 checks before it merges it.
const (
	partialsDir    = "partials/"
	partialExt     = ".partial"
	jobDoneKey     = "job.done"
	blobVersion    = 1
	lineageSeqBits = 24
)

// putPartial writes the sealed partial p of partition id as a blob and
// returns what a close record says of it.
func (s *Checkpoints) putPartial(ctx context.Context, id PartitionID, p *Partial) (ClosedWindow, error) {
	b := appendBlob(nil, id, p)
	sum := sha256.Sum256(b)
	hexSum := hex.EncodeToString(sum[:])
	key := partialsDir + url.PathEscape(p.Dataset) + "/" + strconv.FormatInt(p.Window.Start, 10) + "/" +
		url.PathEscape(id.String()) + "-" + hexSum + partialExt
	// Create-only: the name is the content, so an object already there is
	// this very blob, written before a crash or by the partition's
	// previous owner.
	if err := s.store.Put(ctx, key, b, true); err != nil && !errors.Is(err, ErrStateExists) {
		return ClosedWindow{}, fmt.Errorf("checkpoints: partial blob: %w", err)
	}
	return ClosedWindow{Window: p.Window, Blob: key, SHA256: hexSum, Events: p.Events}, nil
}

// getPartial reads the blob a close record names, checking its SHA-256,
// partition, window and dataset.
func (s *Checkpoints) getPartial(ctx context.Context, dataset string, id PartitionID, cw ClosedWindow) (*Partial, error) {
	if !strings.HasPrefix(cw.Blob, partialsDir) || strings.Contains(cw.Blob, "..") {
		return nil, fmt.Errorf("close record of %s names %q, which is no partial blob", id, cw.Blob)
	}
	b, err := s.store.Get(ctx, cw.Blob)
	if errors.Is(err, ErrStateNotFound) {
		return nil, fmt.Errorf("partial blob %s of %s window %s is missing from %s: the state store is not this job's, or damaged", cw.Blob, id, formatWindow(cw.Window), s.store)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != cw.SHA256 {
		return nil, fmt.Errorf("partial blob %s does not match the SHA-256 its close record names: the state store is damaged; restore it or start over", cw.Blob)
	}
	head, p, err := readBlob(b)
	if err != nil {
		return nil, damaged("partial blob %s is unreadable (%v)", cw.Blob, err)
	}
	if head.Version != blobVersion || head.Partition != id || head.Window != cw.Window || p.Dataset != dataset {
		return nil, damaged("partial blob %s holds %s %s of %s (format %d), not what its close record names", cw.Blob,
			head.Partition, formatWindow(head.Window), p.Dataset, head.Version)
	}
	return p, nil
}

// A blob is encoded by hand, not with gob: gob numbers types in the order
// a process first meets them, so the same partial would encode to other
// bytes in another process (a takeover's), and its name is its SHA-256.
// Every field in order; integers as varints, strings and byte strings
// length first.
const blobMagic = "deid-partial\n"

// appendBlob appends the blob of the sealed partial p of partition id,
// straight from its Cells: cells in the order of their keys, a cell's
// contributions in the order of their workspaces, a set's members in
// order, so that the same content always encodes to the same bytes.
func appendBlob(b []byte, id PartitionID, p *Partial) []byte {
	b = append(append(b, blobMagic...), byte(blobVersion))
	b = appendString(b, id.Source)
	b = binary.AppendVarint(b, int64(id.Partition))
	b = binary.AppendVarint(b, p.Window.Start)
	b = binary.AppendVarint(b, p.Window.End)
	b = appendString(b, p.Dataset)
	b = binary.AppendVarint(b, p.Events)
	cells := p.content()
	keys := make([]CellKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b CellKey) int { return slices.Compare(a[:], b[:]) })
	b = binary.AppendUvarint(b, uint64(len(keys)))
	var wss, members []Pseudonym
	for i := range keys {
		b = appendCellKey(b, &keys[i])
		byWS := cells[keys[i]]
		wss = wss[:0]
		for ws := range byWS {
			wss = append(wss, ws)
		}
		slices.SortFunc(wss, Pseudonym.Compare)
		b = binary.AppendUvarint(b, uint64(len(wss)))
		for _, ws := range wss {
			c := byWS[ws]
			b = appendContribHead(b, ws, c.Events, c.Sums, len(c.Sets))
			for j := range c.Sets {
				members = c.Sets[j].appendMembers(members[:0])
				slices.SortFunc(members, Pseudonym.Compare)
				b = appendMembers(b, members)
			}
			b = appendFlag(b, c.Overflow)
		}
	}
	return b
}

// A contribution, in a blob and in a checkpoint alike: its workspace, its
// events, its sums (a count, then each), its sets (a count, then each as
// its members' bytes end to end), its overflow flag. appendContribHead
// writes up to the count of sets; appendMembers each set, then appendFlag
// the overflow.
func appendContribHead(b []byte, ws Pseudonym, events int64, sums []int64, sets int) []byte {
	b = binary.AppendUvarint(b, uint64(len(ws)))
	b = append(b, ws[:]...)
	b = binary.AppendVarint(b, events)
	b = binary.AppendUvarint(b, uint64(len(sums)))
	for _, v := range sums {
		b = binary.AppendVarint(b, v)
	}
	return binary.AppendUvarint(b, uint64(sets))
}

func appendMembers(b []byte, members []Pseudonym) []byte {
	b = binary.AppendUvarint(b, uint64(len(members)*len(Pseudonym{})))
	for _, m := range members {
		b = append(b, m[:]...)
	}
	return b
}

// contribution reads what appendContribHead, appendMembers and appendFlag
// wrote; a workspace or a set that is not whole pseudonyms is damage.
func (r *blobReader) contribution() (Pseudonym, *Contribution) {
	var ws Pseudonym
	if b := r.bytes("workspace"); len(b) == len(ws) {
		ws = Pseudonym(b)
	} else {
		r.fail("workspace")
	}
	c := &Contribution{Events: r.varint("contribution")}
	c.Sums = make([]int64, r.count("sums"))
	for k := range c.Sums {
		c.Sums[k] = r.varint("sums")
	}
	c.Sets = make([]EntitySet, r.count("sets"))
	for k := range c.Sets {
		set := r.bytes("sets")
		if len(set)%len(ws) != 0 {
			r.fail("sets")
			break
		}
		for i := 0; i < len(set); i += len(ws) {
			c.Sets[k].Add(Pseudonym(set[i:]))
		}
	}
	c.Overflow = r.flag("overflow") == 1
	return ws, c
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// blobReader reads what appendBlob and appendPartial wrote; the first
// error sticks.
type blobReader struct {
	b   []byte
	err error
}

func (r *blobReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or damaged at %s", what)
	}
	r.b = nil
}

func (r *blobReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a list's length, at most one element a byte left.
func (r *blobReader) count(what string) int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)) {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *blobReader) bytes(what string) []byte {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)-n) {
		r.fail(what)
		return nil
	}
	out := r.b[n : n+int(v)]
	r.b = r.b[n+int(v):]
	return out
}

// blobHead is what a blob says of itself beside its partial.
type blobHead struct {
	Version   int
	Partition PartitionID
	Window    Window
}

// readBlob reads what appendBlob wrote into a sealed partial.
func readBlob(b []byte) (blobHead, *Partial, error) {
	var h blobHead
	if !bytes.HasPrefix(b, []byte(blobMagic)) || len(b) == len(blobMagic) {
		return h, nil, errors.New("not a partial blob")
	}
	h.Version = int(b[len(blobMagic)])
	if h.Version != blobVersion {
		return h, nil, fmt.Errorf("format %d; this deid reads format %d", h.Version, blobVersion)
	}
	r := &blobReader{b: b[len(blobMagic)+1:]}
	h.Partition.Source = string(r.bytes("partition"))
	h.Partition.Partition = int32(r.varint("partition"))
	h.Window.Start, h.Window.End = r.varint("window"), r.varint("window")
	s := r.sealed(h.Window)
	if err := r.end(); err != nil {
		return h, nil, err
	}
	return h, s.p, nil
}

// flag reads one flag byte (0 or 1).
func (r *blobReader) flag(what string) byte {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// lineageSeq returns the sequence number in a checkpoint's key (0 when the
// key is no checkpoint's): stage 2 prefers the close record of the newer
// lineage when two owners of a partition closed the same window.
func lineageSeq(key string) int64 {
	name := key[strings.LastIndexByte(key, '/')+1:]
	seq, err := strconv.ParseInt(strings.TrimSuffix(name, checkpointExt), 10, 64)
	if err != nil || !strings.HasSuffix(name, checkpointExt) {
		return 0
	}
	return seq
}

// JobDone is what stage 2 writes once a bounded job is done: every input
// partition closed through its end and every window published. Through
// holds each partition's next offset at its end.
type JobDone struct {
	Through map[string]int64 `json:"through"`
}

func (s *Checkpoints) saveJobDone(ctx context.Context, d *JobDone) error {
	return s.write(ctx, jobDoneKey, d)
}

// JobDoneThrough reads what the last bounded job's stage 2 wrote: each
// input partition's next offset at the end it published through (nil when
// no bounded job finished on this state).
func (s *Checkpoints) JobDoneThrough(ctx context.Context) (map[string]int64, error) {
	var d JobDone
	ok, err := s.read(ctx, jobDoneKey, &d)
	if err != nil || !ok {
		return nil, err
	}
	return d.Through, nil
}

func sortedRefs(m map[PartitionID]blobRef) []PartitionID {
	keys := make([]PartitionID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b PartitionID) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Partition, b.Partition))
	})
	return keys
}
