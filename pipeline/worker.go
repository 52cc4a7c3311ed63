package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// noTime marks "no event seen yet" for a partition's newest event time.
const noTime = math.MinInt64

// dedupKey is a collision-safe key of an event_id: 128 bits of its SHA-256.
type dedupKey [16]byte

// openWindow is one window's state in one partition.
type openWindow struct {
	w Window
	// seen holds the keys of every well-formed, non-late event_id of the
	// window in this partition, whatever became of the record.
	seen map[dedupKey]struct{}
	// partials holds one partial per aggregator, nil until it gets an event.
	partials []*Partial
}

// closeNotice tells the publisher that a partition has closed every window
// ending at or before ClosedEnd, and hands over their partials.
type closeNotice struct {
	Part      PartitionID
	ClosedEnd int64
	Windows   []*openWindow
	Acct      PartitionAccounting
	Head      string
}

// worker works one partition: it owns the partition's state and nothing in
// it is shared. Records flow one way: decode → gates → window partials.
type worker struct {
	cfg     *Config
	st      *Stages
	reader  PartitionReader
	dec     Decoder
	pz      *Pseudonymizer
	chain   ExclusionChain
	dead    DeadLetterWriter
	now     func() time.Time
	out     chan<- closeNotice
	kindAgg [4]int
	stats   *Stats

	maxSeen   int64
	closedEnd int64
	windows   map[int64]*openWindow
	acct      PartitionAccounting
	pending   int
	ev        Event
	exc       Exclusion
}

func newWorker(cfg *Config, st *Stages, r PartitionReader, chain ExclusionChain, dead DeadLetterWriter,
	now func() time.Time, out chan<- closeNotice, stats *Stats) *worker {
	w := &worker{cfg: cfg, st: st, reader: r, dec: st.NewDecoder(), pz: NewPseudonymizer(st.PseudonymKey),
		chain: chain, dead: dead, now: now, out: out, stats: stats,
		maxSeen: noTime, closedEnd: noTime, windows: map[int64]*openWindow{}}
	w.kindAgg = kindAggregators(st.Aggregators)
	id := r.ID().String()
	w.acct = PartitionAccounting{Partition: id, FirstOffset: -1, LastOffset: -1,
		Excluded: map[string]int64{}, ContributedByDataset: map[string]int64{}}
	return w
}

// kindAggregators maps each event kind to the aggregator that takes it, or -1.
func kindAggregators(aggs []Aggregator) [4]int {
	k := [4]int{-1, -1, -1, -1}
	for i, a := range aggs {
		for _, kind := range a.Spec().Kinds {
			if int(kind) < len(k) && k[kind] < 0 {
				k[kind] = i
			}
		}
	}
	return k
}

// run reads the partition to its end (or until ctx is done), then closes
// every open window.
func (w *worker) run(ctx context.Context) error {
	id := w.reader.ID()
	for {
		batch, err := w.reader.Next(ctx)
		for i := range batch {
			if perr := w.process(&batch[i]); perr != nil {
				return fmt.Errorf("partition %s: %w", id, perr)
			}
		}
		w.stats.Records.Add(int64(len(batch)))
		if len(batch) > 0 {
			if cerr := w.closeWindows(ctx, w.bound()); cerr != nil {
				return fmt.Errorf("partition %s: %w", id, cerr)
			}
		}
		if errors.Is(err, io.EOF) {
			// At end of input every open window closes (SPEC §5).
			if cerr := w.closeWindows(ctx, math.MaxInt64); cerr != nil {
				return fmt.Errorf("partition %s: %w", id, cerr)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("partition %s: reading: %w", id, err)
		}
	}
}

// bound returns the end time at or before which every window is closed:
// the watermark less the allowed lateness, rounded down to a window edge.
func (w *worker) bound() int64 {
	if w.maxSeen == noTime {
		return noTime
	}
	wm := w.maxSeen - w.cfg.MaxOutOfOrderness.Microseconds() - w.cfg.AllowedLateness.Microseconds()
	return wm - mod(wm, w.cfg.Window.Microseconds())
}

// process gives one record its disposition.
func (w *worker) process(rec *Record) error {
	a := &w.acct
	a.Read++
	if a.FirstOffset < 0 {
		a.FirstOffset = rec.Pos.Offset
	}
	a.LastOffset = rec.Pos.Offset
	if rec.Err != nil {
		return w.deadLetter(rec, rec.Err)
	}
	ev := &w.ev
	if err := w.dec.Decode(rec.Value, ev); err != nil {
		var me *MalformedError
		if !errors.As(err, &me) {
			me = &MalformedError{Code: "invalid_value", Detail: err.Error()}
		}
		return w.deadLetter(rec, me)
	}
	if ev.OccurredAt > w.now().Add(w.cfg.MaxFutureSkew).UnixMicro() {
		return w.deadLetter(rec, &MalformedError{Code: "future_timestamp", Field: "occurred_at",
			Detail: "more than max_future_skew ahead of the processing time"})
	}
	reason, err := w.gate(rec, ev)
	if err != nil {
		return err
	}
	// Every well-formed record advances the watermark, whatever its
	// disposition (SPEC §3.7).
	if ev.OccurredAt > w.maxSeen {
		w.maxSeen = ev.OccurredAt
	}
	if reason != ReasonNone {
		return w.exclude(rec, ev, reason)
	}
	return nil
}

// gate runs the gates in the order of SPEC §3.7 and, when the record passes
// them all, aggregates it.
func (w *worker) gate(rec *Record, ev *Event) (Reason, error) {
	win := w.cfg.windowOf(ev.OccurredAt)
	if win.End <= w.bound() || win.End <= w.closedEnd {
		return ReasonLateEvent, nil
	}
	ow := w.windows[win.Start]
	if ow == nil {
		ow = &openWindow{w: win, seen: map[dedupKey]struct{}{}, partials: make([]*Partial, len(w.st.Aggregators))}
		w.windows[win.Start] = ow
	}
	sum := sha256.Sum256(ev.EventID)
	key := dedupKey(sum[:16])
	if _, dup := ow.seen[key]; dup {
		return ReasonDuplicate, nil
	}
	ow.seen[key] = struct{}{}
	if ev.Kind == KindMessage {
		return ReasonMessageContent, nil
	}
	agg := w.kindAgg[ev.Kind]
	if agg < 0 {
		return ReasonUnsupportedEventType, nil
	}
	if r := w.st.Consent.Check(ev); r != ReasonNone {
		return r, nil
	}
	for _, g := range w.st.Gates {
		if r := g.Check(ev); r != ReasonNone {
			return r, nil
		}
	}
	// The consent decision is made: from here on only pseudonyms are kept.
	ws := w.pz.Of(ev.WorkspaceID)
	p := ow.partials[agg]
	if p == nil {
		p = NewPartial(w.st.Aggregators[agg].Spec().Name, win)
		ow.partials[agg] = p
	}
	w.st.Aggregators[agg].Add(p, ev, ws, w.pz)
	p.Events++
	w.acct.Contributed++
	w.acct.ContributedByDataset[p.Dataset]++
	w.stats.Contributed.Add(1)
	return ReasonNone, nil
}

func (w *worker) deadLetter(rec *Record, me *MalformedError) error {
	w.acct.DeadLetters++
	w.stats.DeadLetters.Add(1)
	if err := w.dead.Write(*rec, me); err != nil {
		return fmt.Errorf("dead letter at %s: %w", rec.Pos, err)
	}
	return nil
}

func (w *worker) exclude(rec *Record, ev *Event, reason Reason) error {
	w.acct.Excluded[reason.String()]++
	w.stats.excluded(reason)
	w.exc = Exclusion{EventID: string(ev.EventID), EventType: string(ev.EventType), WorkspaceID: string(ev.WorkspaceID),
		Pos: rec.Pos, OccurredAt: ev.OccurredAt, Reason: reason, PolicyVersion: w.cfg.PolicyVersion,
		DecidedAt: w.now().UnixMicro()}
	if err := w.chain.Append(&w.exc); err != nil {
		return fmt.Errorf("exclusion log at %s: %w", rec.Pos, err)
	}
	w.pending++
	return nil
}

// closeWindows closes every window ending at or before end: it commits the
// partition's exclusion segment and dead letters first, so a published
// window's manifest names a chain head covering every exclusion before it,
// then hands the closed partials to the publisher.
func (w *worker) closeWindows(ctx context.Context, end int64) error {
	if end <= w.closedEnd {
		if w.pending >= w.cfg.SegmentEntries {
			_, err := w.commit(ctx)
			return err
		}
		return nil
	}
	w.closedEnd = end
	var closed []*openWindow
	for start, ow := range w.windows {
		if ow.w.End <= end {
			closed = append(closed, ow)
			delete(w.windows, start)
		}
	}
	slices.SortFunc(closed, func(a, b *openWindow) int { return cmpInt64(a.w.Start, b.w.Start) })
	head, err := w.commit(ctx)
	if err != nil {
		return err
	}
	n := closeNotice{Part: w.reader.ID(), ClosedEnd: end, Windows: closed, Acct: w.snapshot(), Head: head}
	select {
	case w.out <- n:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit makes the partition's dead letters and exclusions durable.
func (w *worker) commit(ctx context.Context) (string, error) {
	if err := w.dead.Flush(ctx); err != nil {
		return "", fmt.Errorf("dead letters: %w", err)
	}
	acct := w.snapshot()
	head, err := w.chain.Commit(ctx, &acct)
	if err != nil {
		return "", fmt.Errorf("exclusion log: %w", err)
	}
	w.pending = 0
	return head, nil
}

// snapshot copies the partition's accounting.
func (w *worker) snapshot() PartitionAccounting {
	a := w.acct
	a.Excluded = cloneMap(a.Excluded)
	a.ContributedByDataset = cloneMap(a.ContributedByDataset)
	return a
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats are live counters for progress and metrics, updated atomically by
// the workers and the publisher.
type Stats struct {
	Records     atomic.Int64
	Contributed atomic.Int64
	DeadLetters atomic.Int64
	Excluded    [numReasons]atomic.Int64
	Windows     atomic.Int64
}

func (s *Stats) excluded(r Reason) { s.Excluded[r].Add(1) }
