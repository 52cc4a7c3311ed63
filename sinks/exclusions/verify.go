package exclusions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/mya/deid/sinks/internal/fsutil"
)

// ChainReport is what VerifyChain found in one chain directory.
type ChainReport struct {
	// Dir is the chain's directory.
	Dir string
	// Name is the chain's name, as its segments record it.
	Name string
	// Segments are the segments read, in sequence order, with their hashes.
	Segments []SegmentMeta
	// Entries is the total of the segments' entries.
	Entries int64
	// Head is the hash of the newest segment: it must equal, or follow, the
	// chain head that every manifest names for this chain.
	Head string
}

// Contains tells whether head is the hash of one of the chain's segments:
// a manifest's chain head must be.
func (r *ChainReport) Contains(head string) bool {
	for _, s := range r.Segments {
		if s.SHA256 == head {
			return true
		}
	}
	return false
}

// VerifyChain recomputes the hash of every segment in a chain directory and
// checks the chain: sequence numbers run 1, 2, 3… without a gap, each
// segment records its own file's sequence number and the chain's name
// (which the directory's name encodes), each records the SHA-256 of the
// previous segment's file (the first records none), and each holds as many
// readable entries as it says. A deleted, reordered, replaced or edited
// segment is reported naming the segment and what is wrong; all problems
// are joined into the error. Deleting the newest segments cannot be seen
// from the chain alone: compare Head with the manifests' chain heads.
func VerifyChain(dir string) (*ChainReport, error) {
	r := &ChainReport{Dir: dir}
	name, derr := fsutil.DecodeName(filepath.Base(dir))
	label := name
	if derr != nil {
		label = filepath.Base(dir)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("exclusions: chain %s: "+format, append([]any{label}, args...)...))
	}
	seqs, other, err := listSegments(dir)
	if err != nil {
		return r, fmt.Errorf("exclusions: chain %s: %w", label, err)
	}
	for _, n := range other {
		fail("%s: unexpected file in a chain directory", n)
	}
	for _, n := range orphanSigs(dir, seqs) {
		fail("%s: the signature of a segment that is not there: the segment was deleted (or its commit was interrupted and deid has not run since)", n)
	}
	if len(seqs) == 0 {
		fail("no segments")
		return r, errors.Join(errs...)
	}

	prevHash, prevSeq := "", 0
	for _, seq := range seqs {
		file := SegmentName(seq)
		if seq != prevSeq+1 {
			switch {
			case prevSeq == 0 && seq == 2:
				fail("%s is missing: the chain starts at %s", SegmentName(1), file)
			case prevSeq == 0:
				fail("%s to %s are missing: the chain starts at %s", SegmentName(1), SegmentName(seq-1), file)
			case seq == prevSeq+2:
				fail("%s is missing: the chain jumps from %s to %s", SegmentName(prevSeq+1), SegmentName(prevSeq), file)
			default:
				fail("%s to %s are missing: the chain jumps from %s to %s",
					SegmentName(prevSeq+1), SegmentName(seq-1), SegmentName(prevSeq), file)
			}
		}
		path := filepath.Join(dir, file)
		sum, err := fsutil.HashFile(path)
		if err != nil {
			fail("%s: %v", file, err)
			prevHash, prevSeq = "", seq
			continue
		}
		entries, meta, err := ReadSegment(path)
		if err != nil {
			fail("%s: unreadable, so it was damaged or edited: %v", file, err)
			prevHash, prevSeq = sum, seq
			continue
		}
		meta.SHA256 = sum
		if r.Name == "" {
			r.Name = meta.Chain
		}
		switch {
		case derr == nil && meta.Chain != name:
			fail("%s: records chain %q, but the directory is chain %q: it was moved from another chain", file, meta.Chain, name)
		case meta.Chain != r.Name:
			fail("%s: records chain %q, but earlier segments record %q", file, meta.Chain, r.Name)
		}
		if meta.Seq != seq {
			fail("%s: records sequence number %d: segments were renamed or reordered", file, meta.Seq)
		}
		switch {
		case seq == prevSeq+1 && prevSeq == 0 && meta.PrevSHA256 != "":
			fail("%s: the first segment records a previous segment %s", file, meta.PrevSHA256)
		case seq == prevSeq+1 && prevSeq > 0 && prevHash != "" && meta.PrevSHA256 != prevHash:
			fail("%s: records previous hash %s, but %s hashes to %s: one of the two was edited or replaced, or they are out of order",
				file, short(meta.PrevSHA256), SegmentName(prevSeq), short(prevHash))
		}
		r.Segments = append(r.Segments, *meta)
		r.Entries += int64(len(entries))
		r.Head = sum
		prevHash, prevSeq = sum, seq
	}
	if r.Name == "" && derr == nil {
		r.Name = name
	}
	return r, errors.Join(errs...)
}

// orphanSigs returns the names of the signature files in dir whose
// segment is not among seqs.
func orphanSigs(dir string, seqs []int) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, n := range seqs {
		have[SegmentName(n)] = true
	}
	var out []string
	for _, e := range ents {
		if m := sigName.FindStringSubmatch(e.Name()); m != nil && !have[m[1]] {
			out = append(out, e.Name())
		}
	}
	return out
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// VerifyAll verifies every chain under <outDir>/exclusions, in directory
// order, and joins their problems. An output without exclusions has no
// chains.
func VerifyAll(outDir string) ([]*ChainReport, error) {
	root := filepath.Join(outDir, "exclusions")
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("exclusions: %w", err)
	}
	var reports []*ChainReport
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			errs = append(errs, fmt.Errorf("exclusions: %s: unexpected file beside the chain directories", e.Name()))
			continue
		}
		r, err := VerifyChain(filepath.Join(root, e.Name()))
		reports = append(reports, r)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reports, errors.Join(errs...)
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
