package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// partState is what the publisher knows of one partition.
type partState struct {
	closedEnd int64
	acct      PartitionAccounting
	head      string
}

// pendingWindow gathers one window's partials from every partition.
type pendingWindow struct {
	w        Window
	partials []*Partial
	// from are the partitions whose partials were merged: a partition that
	// hands a window over again after a restart or rebalance counts once.
	from map[PartitionID]bool
}

// publisher publishes a window once every partition has closed it: it
// merges the partitions' partials, re-checks consent, runs the privacy gate,
// logs withdrawals and suppressions, and commits each dataset's window.
// It runs in one goroutine; nothing in it is shared.
type publisher struct {
	cfg     *Config
	st      *Stages
	chain   ExclusionChain
	now     func() time.Time
	parts   map[PartitionID]*partState
	pending map[int64]*pendingWindow
	stats   *Stats
	summary *Summary
	// published is shared with the workers: the end of the newest window
	// published.
	published *atomicInt64
}

func newPublisher(cfg *Config, st *Stages, chain ExclusionChain, now func() time.Time,
	stats *Stats, summary *Summary, published *atomicInt64) *publisher {
	return &publisher{cfg: cfg, st: st, chain: chain, now: now, parts: map[PartitionID]*partState{},
		pending: map[int64]*pendingWindow{}, stats: stats, summary: summary, published: published}
}

// recover rolls back the publish-time exclusion entries of a window whose
// commit a crash interrupted: its manifest was never written, so the window
// will be published again, with its entries.
func (p *publisher) recover(ctx context.Context) error {
	if p.st.Checkpoints == nil {
		return nil
	}
	in, ok, err := p.st.Checkpoints.loadIntent(ctx)
	if err != nil || !ok {
		return err
	}
	done, err := p.st.Datasets.Published(in.Dataset, in.Window)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	if done || p.chain.Seq() <= in.SeqBefore {
		return nil
	}
	return p.chain.Rollback(in.SeqBefore)
}

// receive takes a partition's close notice and publishes every window that
// all partitions have now closed.
func (p *publisher) receive(ctx context.Context, n closeNotice) error {
	// A partition, once known, is never dropped: when a rebalance takes one
	// away mid-window, the window waits until the partition comes back (its
	// checkpoint hands the window over again) rather than being published
	// without its data.
	ps := p.parts[n.Part]
	if ps == nil {
		ps = &partState{closedEnd: noTime}
		p.parts[n.Part] = ps
	}
	if n.Register {
		return nil
	}
	ps.closedEnd, ps.acct, ps.head = max(ps.closedEnd, n.ClosedEnd), n.Acct, n.Head
	for _, ow := range n.Windows {
		if ow.w.End <= p.published.Load() {
			continue // published already: windows are immutable
		}
		pw := p.pending[ow.w.Start]
		if pw == nil {
			pw = &pendingWindow{w: ow.w, partials: make([]*Partial, len(p.st.Aggregators)), from: map[PartitionID]bool{}}
			p.pending[ow.w.Start] = pw
		}
		if pw.from[n.Part] {
			continue
		}
		pw.from[n.Part] = true
		for i, part := range ow.partials {
			switch {
			case part == nil:
			case pw.partials[i] == nil:
				pw.partials[i] = part
			default:
				pw.partials[i].Merge(part)
			}
		}
	}
	closed := int64(math.MaxInt64)
	for _, ps := range p.parts {
		closed = min(closed, ps.closedEnd)
	}
	if len(p.parts) == 0 {
		closed = noTime
	}
	var ready []*pendingWindow
	for start, pw := range p.pending {
		if pw.w.End <= closed {
			ready = append(ready, pw)
			delete(p.pending, start)
		}
	}
	slices.SortFunc(ready, func(a, b *pendingWindow) int { return cmp.Compare(a.w.Start, b.w.Start) })
	for _, pw := range ready {
		if err := p.publish(ctx, pw); err != nil {
			return err
		}
		p.published.Store(max(p.published.Load(), pw.w.End))
	}
	return nil
}

// publish commits every dataset of one window.
func (p *publisher) publish(ctx context.Context, pw *pendingWindow) error {
	// Fail closed: consent must be caught up before anything is published.
	if err := p.st.Consent.CaughtUp(ctx); err != nil {
		return fmt.Errorf("publisher: waiting for consent: %w", err)
	}
	for i, agg := range p.st.Aggregators {
		part := pw.partials[i]
		if part == nil {
			continue
		}
		spec := agg.Spec()
		published, err := p.st.Datasets.Published(spec.Name, pw.w)
		if err != nil {
			return fmt.Errorf("publisher: %s: %w", spec.Name, err)
		}
		if published {
			// Published windows are immutable (contract §4): never again.
			continue
		}
		if p.st.Checkpoints != nil {
			// Say what is being committed before committing it, so that a
			// restart can undo a half-done commit (recover).
			if err := p.st.Checkpoints.saveIntent(ctx, &publishIntent{Dataset: spec.Name, Window: pw.w, SeqBefore: p.chain.Seq()}); err != nil {
				return fmt.Errorf("publisher: %w", err)
			}
		}
		began := time.Now()
		out, err := p.window(ctx, spec, part)
		if err != nil {
			return fmt.Errorf("publisher: %s window %s: %w", spec.Name, formatWindow(pw.w), err)
		}
		err = p.st.Datasets.Commit(ctx, out)
		if errors.Is(err, ErrCommittedElsewhere) {
			// Another writer committed the window first: it is published,
			// by them, and never rewritten.
			p.summary.CommittedElsewhere = append(p.summary.CommittedElsewhere, WindowSummary{Dataset: spec.Name, Window: pw.w})
			continue
		}
		if err != nil {
			return fmt.Errorf("publisher: %s window %s: %w", spec.Name, formatWindow(pw.w), err)
		}
		p.stats.Windows.Add(1)
		p.stats.Publish.Observe(time.Since(began))
		p.summary.Windows = append(p.summary.Windows, WindowSummary{Dataset: spec.Name, Window: pw.w, Acct: out.Acct})
	}
	return nil
}

// withdrawals tells whether consent as of now withdraws any workspace of
// the partial.
func withdrawals(c Consent, part *Partial) bool {
	for _, byWS := range part.Cells {
		for ws := range byWS {
			if r, _ := c.AtPublish(ws); r != ReasonNone {
				return true
			}
		}
	}
	return false
}

// withdraw removes the contributions of the workspaces consent withdraws as
// of now, logging each (cell, workspace) in cell and pseudonym order.
func (p *publisher) withdraw(spec *DatasetSpec, part *Partial, acct *WindowAccounting, decided int64) error {
	for _, key := range sortedCells(part.Cells) {
		byWS := part.Cells[key]
		for _, ws := range sortedPseudonyms(byWS) {
			reason, id := p.st.Consent.AtPublish(ws)
			if reason == ReasonNone {
				continue
			}
			c := byWS[ws]
			delete(byWS, ws)
			acct.Withdrawn += c.Events
			acct.WithdrawnByReason[reason.String()] += c.Events
			ce := &CellExclusion{Dataset: spec.Name, Window: part.Window, Dims: key[:len(spec.Dimensions)],
				Reason: reason, Events: c.Events, Workspaces: 1, WorkspaceID: id}
			if err := p.logCell(ce, decided); err != nil {
				return err
			}
		}
		if len(byWS) == 0 {
			delete(part.Cells, key)
		}
	}
	return nil
}

// window builds one dataset window's output: withdrawals, privacy gate,
// accounting.
func (p *publisher) window(ctx context.Context, spec *DatasetSpec, part *Partial) (*WindowOutput, error) {
	acct := WindowAccounting{Contributed: part.Events, WithdrawnByReason: map[string]int64{},
		SuppressedByReason: map[string]int64{}, RowsByLevel: map[int]int64{}, EventsByLevel: map[int]int64{}}
	decided := p.now().UnixMicro()
	// Nothing adds to the partial any more: its content is Cells.
	part.Seal()

	// Consent as of publication: withdraw workspaces that have left since.
	// Most windows have none to withdraw; only then are the cells walked in
	// order, so that the log's entries are always in the same order.
	if withdrawals(p.st.Consent, part) {
		if err := p.withdraw(spec, part, &acct, decided); err != nil {
			return nil, err
		}
	}

	res, err := p.st.Privacy.Apply(spec, part)
	if err != nil {
		return nil, fmt.Errorf("privacy gate: %w", err)
	}
	for i := range res.Suppressed {
		s := &res.Suppressed[i]
		acct.Suppressed += s.Events
		acct.SuppressedByReason[s.Reason.String()] += s.Events
		acct.CellsSuppressed++
		if err := p.logCell(s, decided); err != nil {
			return nil, err
		}
	}
	acct.Published = res.PublishedEvents
	for _, r := range res.Rows {
		acct.RowsByLevel[r.Level]++
	}
	for l, n := range res.EventsByLevel {
		acct.EventsByLevel[l] = n
	}
	if !acct.Balanced() {
		// An invariant failure fails closed: nothing of this window is published.
		return nil, fmt.Errorf("accounting does not add up: contributed %d != published %d + withdrawn %d + suppressed %d",
			acct.Contributed, acct.Published, acct.Withdrawn, acct.Suppressed)
	}
	head, err := p.chain.Commit(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("exclusion log: %w", err)
	}
	out := &WindowOutput{Spec: spec, Window: part.Window, Rows: res.Rows, Acct: acct,
		ChainHeads: map[string]string{PublishChain: head}, PolicyVersion: p.cfg.PolicyVersion,
		PipelineVersion: p.cfg.PipelineVersion}
	for _, id := range sortedPartitions(p.parts) {
		ps := p.parts[id]
		out.Partitions = append(out.Partitions, ps.acct)
		out.ChainHeads[id.String()] = ps.head
	}
	return out, nil
}

// PublishChain is the name of the exclusion-log chain of publish-time entries.
const PublishChain = "publish"

func (p *publisher) logCell(ce *CellExclusion, decided int64) error {
	e := Exclusion{WorkspaceID: ce.WorkspaceID, Reason: ce.Reason, Cell: ce, PolicyVersion: p.cfg.PolicyVersion,
		DecidedAt: decided, Pos: Position{Source: ce.Dataset}}
	if err := p.chain.Append(&e); err != nil {
		return fmt.Errorf("exclusion log: %w", err)
	}
	return nil
}

func sortedCells(m map[CellKey]map[Pseudonym]*Contribution) []CellKey {
	keys := make([]CellKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b CellKey) int { return slices.Compare(a[:], b[:]) })
	return keys
}

func sortedPseudonyms(m map[Pseudonym]*Contribution) []Pseudonym {
	keys := make([]Pseudonym, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Pseudonym.Compare)
	return keys
}

// sortedPartitions returns m's partitions by source, then number.
func sortedPartitions[V any](m map[PartitionID]V) []PartitionID {
	keys := make([]PartitionID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b PartitionID) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Partition, b.Partition))
	})
	return keys
}

func formatWindow(w Window) string {
	return time.UnixMicro(w.Start).UTC().Format(time.RFC3339) + "/" + time.UnixMicro(w.End).UTC().Format(time.RFC3339)
}
