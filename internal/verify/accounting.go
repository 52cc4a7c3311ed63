package verify

import (
	"fmt"
	"maps"

	"github.com/mya/deid/pipeline"
)

// checkAccounting checks the identities of contract §8 and that the exclusion
// log and the dead letters agree with the counts.
func (v *verifier) checkAccounting() error {
	const sec = SectionAccounting
	chains := v.partitionChains()

	// Per partition: read = contributed + excluded + dead letters, at every
	// commit of the log and in every manifest, and counts only grow.
	var problems []string
	var total pipeline.PartitionAccounting
	total.Excluded = map[string]int64{}
	parts := 0
	for _, c := range chains {
		var prev *pipeline.PartitionAccounting
		for _, s := range c.Segments {
			a := s.Meta.Accounting
			if a == nil {
				continue
			}
			if !a.Balanced() {
				problems = append(problems, fmt.Sprintf("partition %s, %s: %s does not add up", c.Name, baseName(s.Meta.Path), acctText(a)))
			}
			if a.Partition != c.Name {
				problems = append(problems, fmt.Sprintf("partition %s, %s: records the accounting of partition %s", c.Name, baseName(s.Meta.Path), a.Partition))
			}
			if prev != nil && shrank(prev, a) {
				problems = append(problems, fmt.Sprintf("partition %s, %s: counts went down since the segment before (%s, then %s)",
					c.Name, baseName(s.Meta.Path), acctText(prev), acctText(a)))
			}
			prev = a
		}
		if f := c.Final(); f != nil {
			parts++
			total.Read += f.Read
			total.Contributed += f.Contributed
			total.DeadLetters += f.DeadLetters
			for k, n := range f.Excluded {
				total.Excluded[k] += n
			}
		}
	}
	for _, w := range v.windows() {
		for _, p := range w.Partitions() {
			if !p.Balanced() {
				problems = append(problems, fmt.Sprintf("%s: partition %s: %s does not add up", v.out.rel(w.Path), p.Partition, acctText(&p)))
			}
		}
	}
	if parts > 0 || len(problems) > 0 {
		v.r.add(sec, problems,
			fmt.Sprintf("%d partitions: read %d = contributed %d + excluded %d + dead letters %d, at every commit of the log and in every accounting record",
				parts, total.Read, total.Contributed, sum(total.Excluded), total.DeadLetters),
			fmt.Sprintf("%s do not add up", many(len(problems), "partition accounting")))
	}

	// Each window's accounting record: there, readable, and the one its
	// manifest names by SHA-256.
	v.checkRecords()

	// Per window: contributed = published + withdrawn + suppressed, and
	// the per-level and per-reason splits add up to the totals.
	problems = nil
	var wt pipeline.WindowAccounting
	for _, w := range v.windows() {
		a := w.Acct()
		label := windowLabel(w)
		wt.Contributed += a.Contributed
		wt.Published += a.Published
		wt.Withdrawn += a.Withdrawn
		wt.Suppressed += a.Suppressed
		if !a.Balanced() {
			problems = append(problems, fmt.Sprintf("%s: contributed %d ≠ published %d + withdrawn %d + suppressed %d",
				label, a.Contributed, a.Published, a.Withdrawn, a.Suppressed))
		}
		if n := sum(a.WithdrawnByReason); n != a.Withdrawn {
			problems = append(problems, fmt.Sprintf("%s: withdrawn by reason adds up to %d, not %d", label, n, a.Withdrawn))
		}
		if n := sum(a.SuppressedByReason); n != a.Suppressed {
			problems = append(problems, fmt.Sprintf("%s: suppressed by reason adds up to %d, not %d", label, n, a.Suppressed))
		}
		if n := sum(a.EventsByLevel); n != a.Published {
			problems = append(problems, fmt.Sprintf("%s: published events by level add up to %d, not %d", label, n, a.Published))
		}
		if n := sum(a.RowsByLevel); n != w.Manifest.Rows {
			problems = append(problems, fmt.Sprintf("%s: rows by level add up to %d, but the window has %d rows", label, n, w.Manifest.Rows))
		}
		if pub := w.Manifest.Published; !equalCounts(pub.RowsByLevel, a.RowsByLevel) || !equalCounts(pub.EventsByLevel, a.EventsByLevel) {
			problems = append(problems, fmt.Sprintf("%s: the manifest publishes rows %v and events %v by level, the accounting record says %v and %v",
				label, pub.RowsByLevel, pub.EventsByLevel, a.RowsByLevel, a.EventsByLevel))
		}
	}
	if len(v.windows()) > 0 {
		v.r.add(sec, problems,
			fmt.Sprintf("%d windows: contributed %d = published %d + withdrawn %d + suppressed %d events; the splits by level and reason add up",
				len(v.windows()), wt.Contributed, wt.Published, wt.Withdrawn, wt.Suppressed),
			fmt.Sprintf("%s do not add up", many(len(problems), "window accounting")))
	}

	// The log's record entries agree with the partitions' excluded counts,
	// reason by reason, at every commit.
	problems = nil
	var entries int64
	for _, c := range chains {
		cum := map[string]int64{}
		for _, s := range c.Segments {
			for _, e := range s.Entries {
				if e.Cell != nil {
					problems = append(problems, fmt.Sprintf("partition %s, %s: a cell-level entry (%s) in a partition's chain",
						c.Name, baseName(s.Meta.Path), e.Reason))
					continue
				}
				cum[e.Reason.String()]++
				entries++
			}
			if a := s.Meta.Accounting; a != nil && !equalCounts(cum, a.Excluded) {
				problems = append(problems, fmt.Sprintf("partition %s, up to %s: the log holds %s; the accounting says %s",
					c.Name, baseName(s.Meta.Path), reasonCounts(cum), reasonCounts(a.Excluded)))
			}
		}
	}
	if len(chains) > 0 {
		v.r.add(sec, problems,
			fmt.Sprintf("the exclusion log holds one entry per excluded record: %d entries, matching the accounting reason by reason (%s)",
				entries, reasonCounts(total.Excluded)),
			fmt.Sprintf("the exclusion log and the accounting disagree: %s", many(len(problems), "problem")))
	}

	// Publish-time entries agree with each window's withdrawn and
	// suppressed events and suppressed cells.
	v.checkPublishEntries()

	// Dead letters agree with the partitions' counts.
	problems = nil
	switch {
	case v.out.DeadLetters == nil && total.DeadLetters > 0:
		v.r.note(sec, fmt.Sprintf("%d dead letters are counted, and there is no dead-letters/ directory: in streaming mode they go to a topic, which verify does not read",
			total.DeadLetters))
	case v.out.DeadLetters != nil:
		problems = append(problems, v.out.DeadLetterErrs...)
		names := map[string]bool{}
		var n int64
		for _, c := range chains {
			names[c.Name] = true
			f := c.Final()
			if f == nil {
				continue
			}
			// A dead letter is stored before the commit that counts it, so a
			// run stopped between the two leaves dead letters after the last
			// commit's position: not yet accounted, not lost (a resume reads
			// those records again and does not write them twice).
			var got, after int64
			for _, l := range v.out.DeadLetters[c.Name] {
				if l.Offset > f.LastOffset {
					after++
				} else {
					got++
				}
			}
			n += got
			if got != f.DeadLetters {
				problems = append(problems, fmt.Sprintf("partition %s: %d dead letters in dead-letters/ up to position %d, the accounting says %d", c.Name, got, f.LastOffset, f.DeadLetters))
			}
			if after > 0 {
				v.r.note(sec, fmt.Sprintf("partition %s: %d dead letters after position %d, the last the exclusion log committed: a run stopped between storing them and its next commit; resuming it accounts for them",
					c.Name, after, f.LastOffset))
			}
			seen := map[int64]bool{}
			for _, l := range v.out.DeadLetters[c.Name] {
				if seen[l.Offset] {
					problems = append(problems, fmt.Sprintf("partition %s: position %d is dead-lettered twice", c.Name, l.Offset))
				}
				seen[l.Offset] = true
			}
		}
		for _, p := range sortedKeys(v.out.DeadLetters) {
			if !names[p] {
				problems = append(problems, fmt.Sprintf("partition %s: %d dead letters, but the exclusion log has no chain for it", p, len(v.out.DeadLetters[p])))
			}
		}
		v.r.add(sec, problems,
			fmt.Sprintf("the dead letters agree with the accounting: %d, each once", n),
			fmt.Sprintf("the dead letters and the accounting disagree: %s", many(len(problems), "problem")))
	}

	// Contributions by dataset: what the partitions contributed is what
	// the windows account for (less what is in windows not yet published).
	problems = nil
	fromParts, fromWindows := map[string]int64{}, map[string]int64{}
	for _, c := range chains {
		if f := c.Final(); f != nil {
			for d, n := range f.ContributedByDataset {
				fromParts[d] += n
			}
			if sum(f.ContributedByDataset) != f.Contributed {
				problems = append(problems, fmt.Sprintf("partition %s: contributed %d, but by dataset %d", c.Name, f.Contributed, sum(f.ContributedByDataset)))
			}
		}
	}
	for _, w := range v.windows() {
		fromWindows[w.Manifest.Dataset] += w.Acct().Contributed
	}
	var pending []string
	for _, d := range sortedKeys(union(fromParts, fromWindows)) {
		switch p, w := fromParts[d], fromWindows[d]; {
		case w > p:
			problems = append(problems, fmt.Sprintf("dataset %s: the windows account for %d contributed events, but the partitions contributed only %d", d, w, p))
		case w < p && v.opts.HasInput():
			problems = append(problems, fmt.Sprintf("dataset %s: the partitions contributed %d events, but the windows account for %d: at the end of a file-mode run every window is published, so a window is missing",
				d, p, w))
		case w < p:
			pending = append(pending, fmt.Sprintf("%s %d", d, p-w))
		}
	}
	if len(chains) > 0 {
		pass := fmt.Sprintf("every contributed event is accounted for by a published window (%s)", countsBy64(fromParts))
		if len(pending) > 0 {
			pass = fmt.Sprintf("contributed events not yet in a published window (open windows, or a window deleted): %s", joinComma(pending))
		}
		v.r.add(sec, problems, pass, fmt.Sprintf("the partitions and the windows disagree on contributed events: %s", many(len(problems), "problem")))
	}
	return nil
}

// checkRecords checks that every window's accounting record is there and
// is the one its manifest names.
func (v *verifier) checkRecords() {
	var problems []string
	for _, w := range v.windows() {
		rel := v.out.rel(w.Path)
		switch {
		case w.RecordPath == "":
			continue // checkFiles reported the window
		case w.RecordSHA256 == "":
			problems = append(problems, fmt.Sprintf("%s: its accounting record %s is %s", rel, v.out.rel(w.RecordPath), errText(w.RecordErr)))
		case w.RecordSHA256 != w.Manifest.AccountingSHA256:
			problems = append(problems, fmt.Sprintf("%s: its accounting record %s has SHA-256 %s…, the manifest says %s…: the record was edited or replaced after the commit",
				rel, v.out.rel(w.RecordPath), short(w.RecordSHA256), short(w.Manifest.AccountingSHA256)))
		case w.RecordErr != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", v.out.rel(w.RecordPath), w.RecordErr))
		case w.Record.Dataset != w.Manifest.Dataset || !w.Record.Window.Start.Equal(w.Manifest.Window.Start) || !w.Record.Window.End.Equal(w.Manifest.Window.End):
			problems = append(problems, fmt.Sprintf("%s: records dataset %s window %s, not its manifest's", v.out.rel(w.RecordPath), w.Record.Dataset, day(w.Record.Window.Start)))
		}
	}
	if len(v.windows()) > 0 {
		v.r.add(SectionAccounting, problems,
			fmt.Sprintf("%d accounting records under accounting/, each the one its manifest names by SHA-256", len(v.windows())),
			fmt.Sprintf("%s with the accounting records", many(len(problems), "problem")))
	}
}

// checkPublishEntries compares the publish chain's cell-level entries with
// each window's withdrawn and suppressed counts.
func (v *verifier) checkPublishEntries() {
	const sec = SectionAccounting
	type key struct {
		dataset string
		start   int64
	}
	type agg struct {
		withdrawn, suppressed map[string]int64
		cells                 int64
	}
	got := map[key]*agg{}
	var problems []string
	pc := v.out.Chain(PublishChain)
	if pc != nil {
		pc.Entries(func(s *Segment, e *pipeline.Exclusion) {
			if e.Cell == nil {
				problems = append(problems, fmt.Sprintf("publish chain, %s: a record-level entry (%s at %s)", baseName(s.Meta.Path), e.Reason, e.Pos))
				return
			}
			k := key{e.Cell.Dataset, e.Cell.Window.Start}
			a := got[k]
			if a == nil {
				a = &agg{withdrawn: map[string]int64{}, suppressed: map[string]int64{}}
				got[k] = a
			}
			switch e.Reason {
			case pipeline.ReasonSuppressedFrequency, pipeline.ReasonSuppressedDominance:
				a.suppressed[e.Reason.String()] += e.Cell.Events
				a.cells++
			default:
				a.withdrawn[e.Reason.String()] += e.Cell.Events
			}
		})
	}
	var withdrawn, suppressed, cells int64
	for _, w := range v.windows() {
		m := w.Manifest
		k := key{m.Dataset, m.Window.Start.UnixMicro()}
		a := got[k]
		delete(got, k)
		if a == nil {
			a = &agg{withdrawn: map[string]int64{}, suppressed: map[string]int64{}}
		}
		withdrawn += sum(a.withdrawn)
		suppressed += sum(a.suppressed)
		cells += a.cells
		label := windowLabel(w)
		acct := w.Acct()
		if !equalCounts(a.withdrawn, acct.WithdrawnByReason) {
			problems = append(problems, fmt.Sprintf("%s: the log withdraws %s; the accounting record says %s", label, reasonCounts(a.withdrawn), reasonCounts(acct.WithdrawnByReason)))
		}
		if !equalCounts(a.suppressed, acct.SuppressedByReason) {
			problems = append(problems, fmt.Sprintf("%s: the log suppresses %s; the accounting record says %s", label, reasonCounts(a.suppressed), reasonCounts(acct.SuppressedByReason)))
		}
		if a.cells != acct.CellsSuppressed {
			problems = append(problems, fmt.Sprintf("%s: the log suppresses %d cells; the accounting record says %d", label, a.cells, acct.CellsSuppressed))
		}
	}
	if len(v.windows()) == 0 {
		return
	}
	v.r.add(sec, problems,
		fmt.Sprintf("the publish-time entries agree with every window: %d events withdrawn, %d events suppressed in %d cells", withdrawn, suppressed, cells),
		fmt.Sprintf("the publish-time entries and the windows disagree: %s", many(len(problems), "problem")))
	if len(got) > 0 {
		var ws []string
		for k := range got {
			ws = append(ws, fmt.Sprintf("%s %s", k.dataset, day(timeOf(k.start))))
		}
		v.r.note(sec, fmt.Sprintf("publish-time entries for %d windows without a manifest (a publication interrupted before its commit): %s",
			len(got), joinComma(sortedStrings(ws))))
	}
}

// shrank tells whether any count of b is below a's.
func shrank(a, b *pipeline.PartitionAccounting) bool {
	if b.Read < a.Read || b.Contributed < a.Contributed || b.DeadLetters < a.DeadLetters || b.LastOffset < a.LastOffset {
		return true
	}
	for k, n := range a.Excluded {
		if b.Excluded[k] < n {
			return true
		}
	}
	return false
}

// equalCounts tells whether a and b hold the same counts, a missing key
// counting as 0.
func equalCounts[K comparable](a, b map[K]int64) bool {
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	for k, n := range b {
		if a[k] != n {
			return false
		}
	}
	return true
}

func union(a, b map[string]int64) map[string]int64 {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] += v
	}
	return out
}

func countsBy64(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return joinComma(parts)
}
