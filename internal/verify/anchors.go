package verify

import (
	"fmt"
	"path/filepath"

	"github.com/mya/deid/sinks/anchors"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
)

// checkAnchors compares the output with the anchor log, when one is given:
// everything anchored must be there with the hash anchored. Without one, it
// says that tail truncation cannot be detected.
func (v *verifier) checkAnchors() error {
	const sec = SectionAnchors
	v.r.Summary.Heads = v.heads()
	if v.opts.Anchors == "" {
		v.r.note(sec, "no anchor log given: deleting the newest windows together with the exclusion segments after them cannot be detected from inside the output; pass --anchors FILE (the anchors.file the run appended to)")
		return nil
	}
	lines, torn, err := anchors.ReadFile(v.opts.Anchors)
	if err != nil {
		v.r.add(sec, []string{fmt.Sprintf("the anchor log cannot be read: %v", err)}, "", "the anchor log is unreadable")
		return nil
	}
	exp := anchors.Expect(lines)
	problems := append([]string(nil), exp.Conflicts...)

	segs := map[string]map[int]string{} // chain → seq → SHA-256
	for _, c := range v.out.Chains {
		if c.Report == nil {
			continue
		}
		m := map[int]string{}
		for _, s := range c.Report.Segments {
			m[s.Seq] = s.SHA256
		}
		segs[c.Name] = m
	}
	windows, chains := 0, 0
	for _, l := range exp.Lines {
		switch l.Kind {
		case anchors.KindDataset:
			windows++
			path := filepath.Join(v.out.Dir, "datasets", l.Name, filepath.FromSlash(l.Window), parquet.ManifestName)
			sum, _, err := hashFile(path)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("window %s %s is anchored but missing from the output (%s %s)", l.Name, l.Window, v.out.rel(path), errText(err)))
			case sum != l.SHA256:
				problems = append(problems, fmt.Sprintf("window %s %s differs from its anchor: its manifest's SHA-256 is %s…, anchored %s…: it was replaced",
					l.Name, l.Window, short(sum), short(l.SHA256)))
			}
		case anchors.KindChain:
			chains++
			sum, ok := segs[l.Name][l.Seq]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("exclusion chain %s segment %d is anchored but missing from the output (%s)",
					l.Name, l.Seq, v.out.rel(filepath.Join(exclusions.ChainDir(v.out.Dir, l.Name), exclusions.SegmentName(l.Seq)))))
			case sum != l.SHA256:
				problems = append(problems, fmt.Sprintf("exclusion chain %s segment %d differs from its anchor: SHA-256 %s…, anchored %s…: it was replaced",
					l.Name, l.Seq, short(sum), short(l.SHA256)))
			}
		}
	}
	v.r.add(sec, problems,
		fmt.Sprintf("all %d anchored windows and %d anchored exclusion segments are in the output with the hashes anchored (%s: %d lines, %d exact repeats, %d rollbacks)",
			windows, chains, v.opts.Anchors, len(lines), exp.Duplicates, exp.Rollbacks),
		fmt.Sprintf("the output does not hold what the anchor log %s anchored: %s (the output was truncated or rewritten)", v.opts.Anchors, many(len(problems), "problem")))

	// What the output holds beyond the anchors: committed after the copy
	// of the log that was given, or the log is another output's.
	anchored := map[string]bool{}
	for _, l := range exp.Lines {
		anchored[l.Key()] = true
	}
	newer := 0
	for _, h := range v.r.Summary.Heads {
		l := anchors.Line{Kind: h.Kind, Name: h.Name, Window: h.Window, Seq: h.Seq}
		if !anchored[l.Key()] {
			newer++
		}
	}
	if newer > 0 {
		v.r.note(sec, fmt.Sprintf("%s of the output's chains %s a newest link the anchor log does not hold: committed after this copy of the log, or the log belongs to another output",
			many(newer, "head"), plural(newer, "has", "have")))
	}
	if torn {
		v.r.note(sec, "the anchor log's last line is incomplete: a crash while it was appended (the commit it anchors is anchored again at the restart)")
	}
	return nil
}
