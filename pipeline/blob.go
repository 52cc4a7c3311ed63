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

// partialBlob is a partial as stage 2 reads it.
type partialBlob struct {
	Version   int
	Partition PartitionID
	Window    Window
	Partial   partialSnap
}

// sortedSnap is snapPartial with every list in order, so that the same
// content always encodes to the same bytes.
func sortedSnap(p *Partial) partialSnap {
	ps := snapPartial(p)
	slices.SortFunc(ps.Cells, func(a, b cellSnap) int { return slices.Compare(a.Key[:], b.Key[:]) })
	for i := range ps.Cells {
		ws := ps.Cells[i].WS
		slices.SortFunc(ws, func(a, b contribSnap) int { return bytes.Compare(a.WS, b.WS) })
		for j := range ws {
			for k, set := range ws[j].Sets {
				ws[j].Sets[k] = sortedMembers(set)
			}
		}
	}
	return ps
}

// sortedMembers sorts a set's pseudonyms, laid end to end.
func sortedMembers(set []byte) []byte {
	n := len(Pseudonym{})
	ms := make([]Pseudonym, 0, len(set)/n)
	for i := 0; i+n <= len(set); i += n {
		ms = append(ms, Pseudonym(set[i:]))
	}
	slices.SortFunc(ms, Pseudonym.Compare)
	out := make([]byte, 0, len(set))
	for _, m := range ms {
		out = append(out, m[:]...)
	}
	return out
}

// putPartial writes the sealed partial p of partition id as a blob and
// returns what a close record says of it.
func (s *Checkpoints) putPartial(ctx context.Context, id PartitionID, p *Partial) (ClosedWindow, error) {
	b := encodeBlob(&partialBlob{Version: blobVersion, Partition: id, Window: p.Window, Partial: sortedSnap(p)})
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
	pb, err := decodeBlob(b)
	if err != nil {
		return nil, damaged("partial blob %s is unreadable (%v)", cw.Blob, err)
	}
	if pb.Version != blobVersion || pb.Partition != id || pb.Window != cw.Window || pb.Partial.Dataset != dataset {
		return nil, damaged("partial blob %s holds %s %s of %s (format %d), not what its close record names", cw.Blob,
			pb.Partition, formatWindow(pb.Window), pb.Partial.Dataset, pb.Version)
	}
	if err := checkSnap(&pb.Partial, pb.Window); err != nil {
		return nil, damaged("partial blob %s: %v", cw.Blob, err)
	}
	return restoreSnap(&pb.Partial, pb.Window), nil
}

// A blob is encoded by hand, not with gob: gob numbers types in the order
// a process first meets them, so the same partial would encode to other
// bytes in another process (a takeover's), and its name is its SHA-256.
// Every field in order; integers as varints, strings and byte strings
// length first.
const blobMagic = "deid-partial\n"

func encodeBlob(pb *partialBlob) []byte {
	b := append([]byte(blobMagic), byte(pb.Version))
	b = appendString(b, pb.Partition.Source)
	b = binary.AppendVarint(b, int64(pb.Partition.Partition))
	b = binary.AppendVarint(b, pb.Window.Start)
	b = binary.AppendVarint(b, pb.Window.End)
	ps := &pb.Partial
	b = appendString(b, ps.Dataset)
	b = binary.AppendVarint(b, ps.Events)
	b = binary.AppendUvarint(b, uint64(len(ps.Cells)))
	for _, c := range ps.Cells {
		for _, k := range c.Key {
			b = appendString(b, k)
		}
		b = binary.AppendUvarint(b, uint64(len(c.WS)))
		for _, w := range c.WS {
			b = appendString(b, string(w.WS))
			b = binary.AppendVarint(b, w.Events)
			b = binary.AppendUvarint(b, uint64(len(w.Sums)))
			for _, v := range w.Sums {
				b = binary.AppendVarint(b, v)
			}
			b = binary.AppendUvarint(b, uint64(len(w.Sets)))
			for _, set := range w.Sets {
				b = appendString(b, string(set))
			}
			if w.Overflow {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// blobReader reads what encodeBlob wrote; the first error sticks.
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

func decodeBlob(b []byte) (*partialBlob, error) {
	if !bytes.HasPrefix(b, []byte(blobMagic)) || len(b) == len(blobMagic) {
		return nil, errors.New("not a partial blob")
	}
	pb := &partialBlob{Version: int(b[len(blobMagic)])}
	if pb.Version != blobVersion {
		return nil, fmt.Errorf("format %d; this deid reads format %d", pb.Version, blobVersion)
	}
	r := &blobReader{b: b[len(blobMagic)+1:]}
	pb.Partition.Source = string(r.bytes("partition"))
	pb.Partition.Partition = int32(r.varint("partition"))
	pb.Window.Start, pb.Window.End = r.varint("window"), r.varint("window")
	ps := &pb.Partial
	ps.Present = true
	ps.Dataset = string(r.bytes("dataset"))
	ps.Events = r.varint("events")
	ps.Cells = make([]cellSnap, r.count("cells"))
	for i := range ps.Cells {
		c := &ps.Cells[i]
		for k := range c.Key {
			c.Key[k] = string(r.bytes("cell key"))
		}
		c.WS = make([]contribSnap, r.count("contributions"))
		for j := range c.WS {
			w := &c.WS[j]
			w.WS = bytes.Clone(r.bytes("workspace"))
			w.Events = r.varint("contribution")
			w.Sums = make([]int64, r.count("sums"))
			for k := range w.Sums {
				w.Sums[k] = r.varint("sums")
			}
			w.Sets = make([][]byte, r.count("sets"))
			for k := range w.Sets {
				w.Sets[k] = bytes.Clone(r.bytes("sets"))
			}
			flag := r.flag("overflow")
			w.Overflow = flag == 1
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("bytes after the end")
	}
	return pb, r.err
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
