package verify

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/mya/deid/pipeline"
)

// checkChains checks the exclusion log's hash chains, and that every chain
// head a manifest records is a segment of its chain with the accounting the
// manifest records.
func (v *verifier) checkChains() error {
	const sec = SectionChain
	if len(v.out.Chains) == 0 {
		if len(v.windows()) > 0 {
			v.r.add(sec, []string{"exclusions/ is missing or empty, but windows were published: the exclusion log was deleted"},
				"", "the exclusion log is missing")
		} else {
			v.r.note(sec, "no exclusion log yet: nothing was committed")
		}
		return nil
	}
	var problems []string
	segs, entries := 0, int64(0)
	for _, c := range v.out.Chains {
		if c.Err != nil {
			for _, line := range strings.Split(c.Err.Error(), "\n") {
				problems = append(problems, strings.TrimPrefix(line, "exclusions: "))
			}
		}
		if c.Report != nil {
			segs += len(c.Report.Segments)
			entries += c.Report.Entries
		}
	}
	v.r.add(sec, problems,
		fmt.Sprintf("%d hash chains intact: %d segments, %d entries; every segment links to the SHA-256 of the one before", len(v.out.Chains), segs, entries),
		fmt.Sprintf("the hash chains are broken: %s (a segment deleted, reordered, replaced or edited)", many(len(problems), "problem")))

	// Chain heads named by manifests.
	problems = nil
	heads := 0
	var acctProblems []string
	for _, w := range v.windows() {
		rel := v.out.rel(w.Path)
		m := w.Manifest
		for _, name := range sortedKeys(m.ExclusionChainHeads) {
			head := m.ExclusionChainHeads[name]
			if head == "" {
				continue // the chain had no segment yet when the window was published
			}
			heads++
			c := v.out.Chain(name)
			switch {
			case c == nil || c.Report == nil:
				problems = append(problems, fmt.Sprintf("%s: names chain %s, which is not in the exclusion log: it was deleted", rel, name))
				continue
			case !c.Report.Contains(head):
				problems = append(problems, fmt.Sprintf("%s: names head %s… of chain %s, which is no segment of it: segments were deleted or edited since",
					rel, short(head), name))
				continue
			}
			if name == PublishChain {
				continue
			}
			seg := segmentWithHash(c, head)
			pa := partitionAccounting(w.Partitions(), name)
			switch {
			case seg == nil || pa == nil:
			case seg.Meta.Accounting == nil:
				acctProblems = append(acctProblems, fmt.Sprintf("%s: partition %s: its head segment %s records no accounting", rel, name, baseName(seg.Meta.Path)))
			case !reflect.DeepEqual(normalize(*seg.Meta.Accounting), normalize(*pa)):
				acctProblems = append(acctProblems, fmt.Sprintf("%s: partition %s: the accounting record says %s, its head segment %s says %s: one of them was edited",
					v.out.rel(w.RecordPath), name, acctText(pa), baseName(seg.Meta.Path), acctText(seg.Meta.Accounting)))
			}
		}
		for _, p := range w.Partitions() {
			if _, ok := m.ExclusionChainHeads[p.Partition]; !ok {
				problems = append(problems, fmt.Sprintf("%s: partition %s has no chain head", rel, p.Partition))
			}
		}
	}
	if len(v.windows()) > 0 {
		v.r.add(sec, problems,
			fmt.Sprintf("all %d chain heads recorded by the manifests are segments of their chains (no segment published before a window was removed)", heads),
			fmt.Sprintf("%s recorded by the manifests missing from the log", many(len(problems), "chain head")))
		v.r.add(sec, acctProblems,
			"each window's partition accounting (in its accounting record) equals the accounting recorded in the segment its chain head names",
			fmt.Sprintf("%s with the log on a partition's accounting", many(len(acctProblems), "disagreement")))
	}
	return nil
}

func segmentWithHash(c *Chain, head string) *Segment {
	for i := range c.Segments {
		if c.Segments[i].Meta.SHA256 == head {
			return &c.Segments[i]
		}
	}
	return nil
}

func partitionAccounting(ps []pipeline.PartitionAccounting, name string) *pipeline.PartitionAccounting {
	for i := range ps {
		if ps[i].Partition == name {
			return &ps[i]
		}
	}
	return nil
}

// normalize drops zero counts, so that an absent and a zero count compare
// equal.
func normalize(a pipeline.PartitionAccounting) pipeline.PartitionAccounting {
	clean := func(m map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	a.Excluded, a.ContributedByDataset = clean(a.Excluded), clean(a.ContributedByDataset)
	return a
}

// acctText renders a partition's accounting in one line.
func acctText(a *pipeline.PartitionAccounting) string {
	return fmt.Sprintf("positions %d–%d: read %d = contributed %d + excluded %d + dead letters %d",
		a.FirstOffset, a.LastOffset, a.Read, a.Contributed, sum(a.Excluded), a.DeadLetters)
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
