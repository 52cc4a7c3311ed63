package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
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
	// window in this partition, whatever became of the record; nil once
	// the window is closed.
	seen *dedupSet
	// log holds the same keys in the state store when the run keeps
	// checkpoints (keylog.go), nil otherwise.
	log *keyLog
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
	// Register only makes the partition known to the publisher, before any
	// worker runs, so that no window is published without it.
	Register bool
}

// worker works one partition: it owns the partition's state and nothing in
// it is shared. Records flow one way: decode → gates → window partials.
type worker struct {
	cfg     *Config
	st      *Stages
	partID  PartitionID
	reader  PartitionReader
	dec     Decoder
	pz      *Pseudonymizer
	chain   ExclusionChain
	dead    DeadLetterWriter
	now     func() time.Time
	out     chan<- closeNotice
	kindAgg [4]int
	stats   *Stats
	// ckpt persists the partition's state; nil when the run keeps none.
	ckpt *partitionState
	// commitOffset tells the source the next position to read, after a
	// checkpoint (a Kafka group commit); nil when there is none.
	commitOffset func(ctx context.Context, c Committed) error
	// published is the end of the newest window the publisher has
	// committed: a record for a window at or before it is late, whatever
	// this partition has seen (a partition that joins after a rebalance).
	published *atomicInt64
	// frontier is the end of the newest window earlier runs published
	// (Stages.PublishedEnd): a record for a window at or before it is late
	// too. The publisher does not skip such windows when a checkpoint hands
	// them over again, since a crash in the middle of a window's commit can
	// leave one dataset of it published and another not.
	frontier int64
	// streaming: the input is unbounded; quiet spells advance the
	// watermark by processing time (idle_timeout).
	streaming bool
	// job is set in a job of several instances (Stages.Closes): the
	// worker sends close records instead of notices, resumes from the
	// checkpoint its group commit names, and stops writing once fenced.
	job *jobWorker

	next int64
	// handed are closed windows handed over but not yet published, kept
	// for the checkpoint.
	handed         []windowSnap
	lastCheckpoint time.Time

	maxSeen   int64
	closedEnd int64
	windows   map[int64]*openWindow
	// seenHint sizes a new window's dedup set: the size of the last one
	// closed, or of the largest one open if larger (windows overlap by the
	// allowed lateness, so the second window opens before the first
	// closes), since a partition's windows tend to be alike.
	seenHint int
	// contribHint sizes a new window's contribution tables, by aggregator:
	// the most contributions a closed window of the partition had, or an
	// open one has, as with seenHint.
	contribHint []int
	acct        PartitionAccounting
	pending     int
	exc         Exclusion
	// batchNow is the processing time of the current batch, read once
	// per batch: the reference of max_future_skew and decision times.
	batchNow int64
	// warmed keeps what warm reads, so that its loads are not optimized away.
	warmed byte
	// last is the open window of the last event gated, nil after it closed.
	last *openWindow
	// boundCache is bound's result for newest event times in [from, until).
	boundCache struct{ from, until, bound int64 }
}

// resume restores the partition's checkpoint, if any, rolls its exclusion
// chain back to the segment committed with it, and returns the position to
// read next.
func (w *worker) resume(ctx context.Context) (next int64, ok bool, err error) {
	if w.ckpt == nil {
		return 0, false, nil
	}
	// Whatever a crash left after the newest checkpoint goes (in a job of
	// several instances: every checkpoint but the committed one).
	var cp *checkpoint
	if w.job != nil {
		cp, ok, err = w.ckpt.loadNamed(ctx, w.job.committed, w.job.gen)
	} else {
		cp, ok, err = w.ckpt.load(ctx)
	}
	if err != nil {
		return 0, false, err
	}
	seq := 0
	if ok {
		seq = cp.ChainSeq
	}
	// Segments committed after the checkpoint are replayed from the input
	// and written again: roll them back so no entry appears twice.
	if err := w.chain.Rollback(seq); err != nil {
		return 0, false, err
	}
	if !ok {
		return 0, false, nil
	}
	// A window holds one partial per dataset of the run that wrote it; a
	// different number cannot be matched to this run's datasets.
	for ws := range cp.snaps() {
		if len(ws.partials) != len(w.st.Aggregators) {
			return 0, false, damaged("partition %s: window %d of the checkpoint holds partials of %d datasets, and this run has %d",
				w.id(), ws.W.Start, len(ws.partials), len(w.st.Aggregators))
		}
	}
	w.next, w.maxSeen, w.closedEnd, w.acct = cp.Next, cp.MaxSeen, cp.ClosedEnd, cp.Acct
	if w.acct.Excluded == nil {
		w.acct.Excluded = map[string]int64{}
	}
	if w.acct.ContributedByDataset == nil {
		w.acct.ContributedByDataset = map[string]int64{}
	}
	for i := range cp.Open {
		ws := &cp.Open[i]
		keys, err := w.ckpt.readKeys(ctx, ws)
		if err != nil {
			return 0, false, err
		}
		ow, err := ws.restore(keys)
		if err != nil {
			return 0, false, damaged("partition %s: %v", w.id(), err)
		}
		// Keys added after the checkpoint were never named by it: reading
		// on from its position adds them again.
		ow.log = w.ckpt.resumeKeyLog(ws)
		w.windows[ow.w.Start] = ow
	}
	w.handed = cp.Handed
	return cp.Next, true, nil
}

// handOverAgain sends the publisher the windows the checkpoint says were
// handed over but not yet published.
func (w *worker) handOverAgain(ctx context.Context) error {
	if w.job != nil {
		return w.sendAgain(ctx)
	}
	n := closeNotice{Part: w.id(), ClosedEnd: w.closedEnd, Acct: w.snapshot(), Head: w.chain.Head()}
	for i := range w.handed {
		ow, err := w.handed[i].restore(nil)
		if err != nil {
			return damaged("partition %s: %v", w.id(), err)
		}
		n.Windows = append(n.Windows, ow)
	}
	select {
	case w.out <- n:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *worker) id() PartitionID { return w.partID }

// newWorker returns the worker of partition id; its reader is attached
// once the source has opened the partition at the resumed position.
func newWorker(e *engine, id PartitionID) (*worker, error) {
	chain, err := e.st.Exclusions.Chain(id.String())
	if err != nil {
		return nil, fmt.Errorf("exclusion log: %w", err)
	}
	dead, err := e.st.DeadLetters.Writer(id)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	w := &worker{cfg: &e.cfg, st: &e.st, partID: id, dec: e.st.NewDecoder(), pz: e.st.Consent.PseudonymKey().Pseudonymizer(),
		chain: chain, dead: dead, now: e.o.now, out: e.notices, stats: e.o.stats,
		published: &e.publishedEnd, frontier: noTime, streaming: e.st.Stream != nil,
		maxSeen: noTime, closedEnd: noTime, windows: map[int64]*openWindow{},
		contribHint: make([]int, len(e.st.Aggregators))}
	if e.st.PublishedEnd != 0 {
		w.frontier = e.st.PublishedEnd
	}
	if e.st.Checkpoints != nil {
		w.ckpt = e.st.Checkpoints.partition(id)
	}
	if e.st.Closes != nil && e.gen != nil {
		gen := e.gen
		w.job = &jobWorker{closes: e.st.Closes, fence: gen.Fence, committed: gen.Committed(id), gen: gen.ID(),
			published: map[publishedKey]bool{}}
	}
	w.kindAgg = kindAggregators(e.st.Aggregators)
	w.acct = PartitionAccounting{Partition: id.String(), FirstOffset: -1, LastOffset: -1,
		Excluded: map[string]int64{}, ContributedByDataset: map[string]int64{}}
	return w, nil
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

// run works the partition until its end (files), until stop is done (a
// shutdown or the end of a Kafka generation: it then checkpoints and
// returns nil), or until ctx is done (an abort: it returns ctx's error).
// Its reader goroutine reads and decodes one batch ahead (ahead.go).
func (w *worker) run(ctx, stop context.Context) error {
	id := w.id()
	if err := w.handOverAgain(ctx); err != nil {
		return err
	}
	w.lastCheckpoint = w.now()
	ps := w.stats.Partition(id)
	reported := w.snapshot()

	full, free := make(chan *ahead, aheadBatches), make(chan *ahead, aheadBatches)
	for range aheadBatches {
		free <- &ahead{}
	}
	readStop, stopReading := context.WithCancel(stop)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.readAhead(ctx, readStop, full, free)
	}()
	// The reader goroutine has stopped using the reader when run returns.
	defer func() { stopReading(); <-readDone }()
	for {
		var b *ahead
		select {
		case b = <-full:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b == nil {
			// The reader goroutine stopped between batches: stop or abort.
			if err := ctx.Err(); err != nil {
				return err
			}
			if cerr := w.checkpoint(ctx); cerr != nil {
				return fmt.Errorf("partition %s: checkpoint at stop: %w", id, cerr)
			}
			return nil
		}
		batch, err := b.recs, b.err
		w.batchNow = b.now
		w.warm(b)
		for i := range batch {
			if perr := w.process(b, i); perr != nil {
				return fmt.Errorf("partition %s: %w", id, perr)
			}
			w.next = batch[i].Pos.Offset + 1
		}
		if b.highWater >= 0 {
			ps.HighWater.Store(b.highWater)
		}
		free <- b // done with it: the reader goroutine may fill it again
		w.publishStats(&reported)
		ps.Records.Add(int64(len(batch)))
		ps.Next.Store(w.next)
		switch {
		case errors.Is(err, io.EOF):
			// At end of input every open window closes (contract §5).
			if cerr := w.closeWindows(ctx, math.MaxInt64); cerr != nil {
				return fmt.Errorf("partition %s: %w", id, cerr)
			}
			return nil
		case err != nil && (stop.Err() != nil || errors.Is(err, ErrGenerationEnded)):
			// Stopping: keep what was read, so a restart continues here.
			if cerr := w.checkpoint(ctx); cerr != nil {
				return fmt.Errorf("partition %s: checkpoint at stop: %w", id, cerr)
			}
			return nil
		case err != nil && w.continues(stop, err, len(batch)):
			// A quiet partition must not hold windows open forever: its
			// watermark follows processing time (contract §5 idle_timeout).
			if now := w.now().UnixMicro(); now > w.maxSeen {
				w.maxSeen = now
			}
		case err != nil:
			return fmt.Errorf("partition %s: reading: %w", id, err)
		}
		if cerr := w.closeWindows(ctx, w.bound()); cerr != nil {
			return fmt.Errorf("partition %s: %w", id, cerr)
		}
		if cerr := w.spillKeys(ctx); cerr != nil {
			return fmt.Errorf("partition %s: %w", id, cerr)
		}
		if w.ckpt != nil && w.now().Sub(w.lastCheckpoint) >= w.cfg.CheckpointInterval {
			if cerr := w.checkpoint(ctx); cerr != nil {
				return fmt.Errorf("partition %s: %w", id, cerr)
			}
		}
	}
}

// bound returns the end time at or before which every window is closed:
// the watermark less the allowed lateness, rounded down to a window edge.
func (w *worker) bound() int64 {
	if w.maxSeen == noTime {
		return noTime
	}
	b := &w.boundCache
	if b.from <= w.maxSeen && w.maxSeen < b.until {
		return b.bound
	}
	delay, size := w.cfg.MaxOutOfOrderness.Microseconds()+w.cfg.AllowedLateness.Microseconds(), w.cfg.Window.Microseconds()
	wm := w.maxSeen - delay
	b.bound = wm - mod(wm, size)
	// Every watermark in [bound, bound+size) gives the same bound.
	b.from, b.until = b.bound+delay, b.bound+size+delay
	return b.bound
}

// process gives the batch's record i its disposition. The reader goroutine
// decoded it (with its dedup key), or found it malformed.
func (w *worker) process(b *ahead, i int) error {
	rec, ev, bad := &b.recs[i], &b.evs[i], b.bad[i]
	a := &w.acct
	a.Read++
	if a.FirstOffset < 0 {
		a.FirstOffset = rec.Pos.Offset
	}
	a.LastOffset = rec.Pos.Offset
	if rec.Err != nil {
		return w.deadLetter(rec, rec.Err)
	}
	if bad != nil {
		return w.deadLetter(rec, bad)
	}
	if ev.OccurredAt > w.batchNow+w.cfg.MaxFutureSkew.Microseconds() {
		return w.deadLetter(rec, &MalformedError{Code: "future_timestamp", Field: "occurred_at",
			Detail: "more than max_future_skew ahead of the processing time"})
	}
	reason, err := w.gate(ev, b.keys[i])
	if err != nil {
		return err
	}
	// Every well-formed record advances the watermark, whatever its
	// disposition (contract §3.7).
	if ev.OccurredAt > w.maxSeen {
		w.maxSeen = ev.OccurredAt
	}
	if reason != ReasonNone {
		return w.exclude(rec, ev, reason)
	}
	return nil
}

// warm reads, for every decoded event of the batch, the first slot its key
// probes in its window's dedup set, in one pass of independent loads. The
// sets of big windows are far larger than the caches, so the dedup gate
// misses the cache on nearly every event; a processor has several misses in
// flight at once when the loads do not depend on each other, as here, but
// only one when each waits for the gate before it. Reading ahead of the
// gates makes theirs cache hits. It changes nothing; a window the batch
// opens is not read ahead.
func (w *worker) warm(b *ahead) {
	var win Window // none yet: no time is in [0, 0)
	var set *dedupSet
	var x byte
	for i := range b.recs {
		if b.recs[i].Err != nil || b.bad[i] != nil {
			continue
		}
		if t := b.evs[i].OccurredAt; t < win.Start || t >= win.End {
			win, set = w.cfg.windowOf(t), nil
			if ow := w.windows[win.Start]; ow != nil {
				set = ow.seen
			}
		}
		if set != nil {
			x ^= set.firstSlot(b.keys[i])
		}
	}
	w.warmed = x
}

// gate runs the gates in the order of contract §3.7 and, when the record passes
// them all, aggregates it.
func (w *worker) gate(ev *Event, key dedupKey) (Reason, error) {
	// Most events fall in the window of the event before.
	ow, win := w.last, Window{}
	if ow != nil && ow.w.Start <= ev.OccurredAt && ev.OccurredAt < ow.w.End {
		win = ow.w
	} else {
		win, ow = w.cfg.windowOf(ev.OccurredAt), nil
	}
	if win.End <= w.bound() || win.End <= w.closedEnd || win.End <= w.published.Load() || win.End <= w.frontier {
		return ReasonLateEvent, nil
	}
	if ow == nil {
		ow = w.windows[win.Start]
	}
	if ow == nil {
		for _, o := range w.windows {
			w.seenHint = max(w.seenHint, o.seen.Len())
		}
		ow = &openWindow{w: win, seen: newDedupSet(w.seenHint), partials: make([]*Partial, len(w.st.Aggregators))}
		if w.ckpt != nil {
			ow.log = w.ckpt.newKeyLog(win.Start)
		}
		w.windows[win.Start] = ow
	}
	w.last = ow
	if !ow.seen.Add(key) {
		return ReasonDuplicate, nil
	}
	if ow.log != nil {
		ow.log.add(key)
	}
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
		p.sizeHint = w.contribHint[agg]
		for _, o := range w.windows {
			if q := o.partials[agg]; q != nil {
				p.sizeHint = max(p.sizeHint, q.contributions())
			}
		}
		ow.partials[agg] = p
	}
	w.st.Aggregators[agg].Add(p, ev, ws, w.pz)
	p.Events++
	w.acct.Contributed++
	w.acct.ContributedByDataset[p.Dataset]++
	return ReasonNone, nil
}

func (w *worker) deadLetter(rec *Record, me *MalformedError) error {
	w.acct.DeadLetters++
	if err := w.dead.Write(*rec, me); err != nil {
		return fmt.Errorf("dead letter at %s: %w", rec.Pos, err)
	}
	return nil
}

func (w *worker) exclude(rec *Record, ev *Event, reason Reason) error {
	w.acct.Excluded[reason.String()]++
	w.exc = Exclusion{EventID: string(ev.EventID), EventType: string(ev.EventType), WorkspaceID: string(ev.WorkspaceID),
		Pos: rec.Pos, OccurredAt: ev.OccurredAt, Reason: reason, PolicyVersion: w.cfg.PolicyVersion,
		DecidedAt: w.batchNow}
	if err := w.chain.Append(&w.exc); err != nil {
		return fmt.Errorf("exclusion log at %s: %w", rec.Pos, err)
	}
	w.pending++
	return nil
}

// closeWindows closes every window ending at or before end. It commits the
// partition's dead letters and exclusion segment and checkpoints first, so
// a published window's manifest names a chain head covering every exclusion
// before it and a crash can only repeat work, never lose it; then it hands
// the closed partials to the publisher.
func (w *worker) closeWindows(ctx context.Context, end int64) error {
	if end <= w.closedEnd {
		if w.pending >= w.cfg.SegmentEntries {
			return w.checkpoint(ctx)
		}
		return nil
	}
	w.closedEnd = end
	var closed []*openWindow
	for start, ow := range w.windows {
		if ow.w.End <= end {
			closed = append(closed, ow)
			delete(w.windows, start)
			if w.last == ow {
				w.last = nil
			}
			w.seenHint = ow.seen.Len()
			ow.seen.Release()
			ow.seen = nil
		}
	}
	slices.SortFunc(closed, func(a, b *openWindow) int { return cmp.Compare(a.w.Start, b.w.Start) })
	for _, ow := range closed {
		if w.ckpt != nil {
			if ow.hasData() {
				// Kept in the checkpoint until published, so a crash cannot
				// lose it; encoded before sealing, from the flat table in
				// creation order, which costs less than walking Cells.
				w.handed = append(w.handed, snapWindow(ow, 0, nil))
			}
			// Its keys go once the checkpoint without it is durable.
			if ow.log != nil {
				ow.log.discard()
				ow.log = nil
			}
		}
		for agg, p := range ow.partials {
			if p != nil {
				w.contribHint[agg] = max(w.contribHint[agg], p.contributions())
				p.Seal() // no event is added to it any more: Cells, once
			}
		}
	}
	if err := w.checkpoint(ctx); err != nil {
		return err
	}
	if w.job != nil {
		return w.sendCloses(ctx, closed)
	}
	n := closeNotice{Part: w.id(), ClosedEnd: end, Windows: closed, Acct: w.snapshot(), Head: w.chain.Head()}
	select {
	case w.out <- n:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spillKeys writes the new dedup keys of a window that holds many of them
// in memory as a run, without waiting for the checkpoint (keylog.go).
func (w *worker) spillKeys(ctx context.Context) error {
	for _, ow := range w.windows {
		if ow.log != nil && ow.log.full() {
			if _, err := ow.log.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasData tells whether any dataset got an event in the window.
func (ow *openWindow) hasData() bool {
	for _, p := range ow.partials {
		if p != nil {
			return true
		}
	}
	return false
}

// checkpoint makes the partition's dead letters and exclusions durable,
// then persists its state with its input position (when the run keeps
// checkpoints), then commits the position to the source. The order is the
// guarantee: an offset is committed only once everything before it is safe.
func (w *worker) checkpoint(ctx context.Context) error {
	if err := w.dead.Flush(ctx); err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	if w.job != nil {
		// Nothing of the partition is written once another member owns it:
		// checked right before the first write to the output.
		if err := w.job.fence(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
	}
	acct := w.snapshot()
	if _, err := w.chain.Commit(ctx, &acct); err != nil {
		if w.job == nil || !errors.Is(err, ErrChainAdvanced) {
			return fmt.Errorf("exclusion log: %w", err)
		}
		if err := w.healChain(ctx, &acct, err); err != nil {
			return err
		}
	}
	w.pending = 0
	start := w.now()
	w.lastCheckpoint = start
	ps := w.stats.Partition(w.id())
	ps.OpenWindows.Store(int64(len(w.windows)))
	if wm := w.maxSeen - w.cfg.MaxOutOfOrderness.Microseconds(); w.maxSeen != noTime {
		ps.Watermark.Store(wm)
	}
	var keys int64
	for _, ow := range w.windows {
		keys += int64(ow.seen.Len())
	}
	ps.DedupKeys.Store(keys)
	if w.ckpt == nil {
		return nil
	}
	if w.job != nil {
		if err := w.dropPublished(); err != nil {
			return err
		}
	} else {
		published := w.published.Load()
		w.handed = slices.DeleteFunc(w.handed, func(ws windowSnap) bool { return ws.W.End <= published })
	}
	cp := &checkpoint{Partition: w.id(), Next: w.next, MaxSeen: w.maxSeen, ClosedEnd: w.closedEnd, Acct: acct,
		ChainSeq: w.chain.Seq(), ChainHead: w.chain.Head(), Handed: w.handed}
	var keyBytes int64
	for _, start := range slices.Sorted(maps.Keys(w.windows)) {
		ow := w.windows[start]
		keys, err := ow.log.flush(ctx) // before the checkpoint that names them
		if err != nil {
			return err
		}
		keyBytes += keys * int64(len(dedupKey{}))
		cp.Open = append(cp.Open, snapWindow(ow, keys, slices.Clone(ow.log.runs)))
	}
	size, name, err := w.ckpt.save(ctx, cp)
	if err != nil {
		return err
	}
	size += keyBytes
	ps.StateBytes.Store(size)
	ps.Checkpoints.Add(1)
	w.stats.Checkpoint.Observe(w.now().Sub(start))
	if w.commitOffset != nil && w.next > 0 {
		// After a rebalance the group refuses the commit; the checkpoint
		// stays the source of truth, so that loses nothing.
		err := w.commitOffset(ctx, Committed{Next: w.next, Checkpoint: name})
		if err != nil && w.job != nil && Fenced(err) {
			// The committed checkpoint is the truth, and it is not this
			// one: another member owns the partition now.
			return fmt.Errorf("%w: committing offset %d: %w", ErrFenced, w.next, err)
		}
		if err != nil && !errors.Is(err, ErrGenerationEnded) {
			return fmt.Errorf("committing offset %d: %w", w.next, err)
		}
	}
	if w.job != nil {
		w.job.checkpoint = name
		// Only now is the older checkpoint unneeded.
		return w.ckpt.collect(ctx)
	}
	return nil
}

// publishStats adds what the partition did since the last report to the
// shared live counters: once a batch, not once a record, so that workers on
// different cores do not fight over the counters' cache lines.
func (w *worker) publishStats(last *PartitionAccounting) {
	a := &w.acct
	w.stats.Records.Add(a.Read - last.Read)
	w.stats.Contributed.Add(a.Contributed - last.Contributed)
	w.stats.DeadLetters.Add(a.DeadLetters - last.DeadLetters)
	for _, r := range RecordReasons() {
		name := r.String()
		if d := a.Excluded[name] - last.Excluded[name]; d != 0 {
			w.stats.Excluded[r].Add(d)
			last.Excluded[name] = a.Excluded[name]
		}
	}
	last.Read, last.Contributed, last.DeadLetters = a.Read, a.Contributed, a.DeadLetters
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

// atomicInt64 is shared between the publisher (writer) and the workers.
type atomicInt64 = atomic.Int64
