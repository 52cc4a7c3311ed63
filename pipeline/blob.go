package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
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
	b, err := encode(&partialBlob{Version: blobVersion, Partition: id, Window: p.Window, Partial: sortedSnap(p)})
	if err != nil {
		return ClosedWindow{}, err
	}
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
	var pb partialBlob
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&pb); err != nil {
		return nil, damaged("partial blob %s is unreadable (%v)", cw.Blob, err)
	}
	if pb.Version != blobVersion || pb.Partition != id || pb.Window != cw.Window || pb.Partial.Dataset != dataset {
		return nil, damaged("partial blob %s holds %s %s of %s (format %d), not what its close record names", cw.Blob,
			pb.Partition, formatWindow(pb.Window), pb.Partial.Dataset, pb.Version)
	}
	ws := windowSnap{W: pb.Window, Partials: []partialSnap{pb.Partial}}
	if err := (&checkpoint{Seq: 1, Open: []windowSnap{ws}}).check(); err != nil {
		return nil, damaged("partial blob %s: %v", cw.Blob, err)
	}
	return ws.restore(nil).partials[0], nil
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
	b, err := encode(d)
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, jobDoneKey, b, false); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	return nil
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
