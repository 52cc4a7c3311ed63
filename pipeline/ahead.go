package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"unsafe"
)

// A partition is worked by two goroutines in a line: the reader reads and
// decodes batch n+1 while the worker gates and aggregates batch n. Decoding
// is a third of a record's cost, so a partition that has more events than
// the others (Kafka keys put a busy workspace in one partition) no longer
// leaves a core idle while it catches up. Two batches circulate between
// them, which is what PartitionReader's contract allows: a batch stays
// valid until the second call to Next after it. Only the reader goroutine
// calls Next and Decode; nothing else is shared.

// ahead is one batch read and decoded ahead of the gates.
type ahead struct {
	recs []Record
	// evs and bad hold each record's decoded event, or why it is
	// malformed; a record the reader already found malformed (Record.Err)
	// is not decoded.
	evs []Event
	bad []*MalformedError
	// keys are the events' dedup keys, hashed here too: it balances the
	// two goroutines' work.
	keys []dedupKey
	// err is the reader's error after recs.
	err error
	// now is the processing time when the batch was read, in microseconds.
	now int64
	// highWater is the partition's high-water mark after the batch, or -1.
	highWater int64
}

// aheadBatches is the number of batches in circulation.
const aheadBatches = 2

// readAhead reads and decodes batches into the buffers it takes from free
// and hands them to the worker through full, until it hands over a batch
// that ends the partition (see continues) or stop or abort is done. Its
// reads honour stop, and in streaming mode time out after idle_timeout.
// It closes full when it returns.
func (w *worker) readAhead(abort, stop context.Context, full chan<- *ahead, free <-chan *ahead) {
	defer close(full)
	hw, _ := w.reader.(HighWaterMarker)
	for {
		var b *ahead
		select {
		case b = <-free:
		case <-stop.Done():
			return
		case <-abort.Done():
			return
		}
		readCtx, cancel := stop, context.CancelFunc(func() {})
		if w.streaming {
			readCtx, cancel = context.WithTimeout(stop, w.cfg.IdleTimeout)
		}
		recs, err := w.reader.Next(readCtx)
		cancel()
		b.recs, b.err, b.now, b.highWater = recs, err, w.now().UnixMicro(), -1
		if hw != nil {
			b.highWater = hw.HighWaterMark()
		}
		b.decode(w.dec)
		select {
		case full <- b:
		case <-abort.Done():
			return
		}
		if !w.continues(stop, err, len(recs)) {
			return
		}
	}
}

// continues tells whether the worker goes on reading after a batch of n
// records that ended with err: after a clean batch, and after a quiet
// spell in streaming mode (the worker then advances the watermark).
func (w *worker) continues(stop context.Context, err error, n int) bool {
	return err == nil || (w.streaming && n == 0 && stop.Err() == nil && errors.Is(err, context.DeadlineExceeded))
}

// decode decodes every record of the batch with dec.
func (b *ahead) decode(dec Decoder) {
	n := len(b.recs)
	if cap(b.evs) < n {
		b.evs, b.bad, b.keys = make([]Event, n), make([]*MalformedError, n), make([]dedupKey, n)
	}
	b.evs, b.bad, b.keys = b.evs[:n], b.bad[:n], b.keys[:n]
	for i := range b.recs {
		rec, ev := &b.recs[i], &b.evs[i]
		b.bad[i] = nil
		if rec.Err != nil {
			continue
		}
		if err := dec.Decode(rec.Value, ev); err != nil {
			var me *MalformedError
			if !errors.As(err, &me) {
				me = &MalformedError{Code: "invalid_value", Detail: err.Error()}
			}
			b.bad[i] = me
			continue
		}
		detach(ev, rec.Value)
		sum := sha256.Sum256(ev.EventID)
		b.keys[i] = dedupKey(sum[:16])
	}
}

// detach copies the event's identifiers that do not lie in the record's
// value (the decoder unescaped them into its own buffers, which its next
// Decode overwrites), so that the event stays valid as long as its batch.
// Escaped identifiers are rare: this copies almost never.
func detach(ev *Event, value []byte) {
	for _, id := range [...]*[]byte{&ev.EventID, &ev.EventType, &ev.WorkspaceID, &ev.UserID,
		&ev.Campaign.CampaignID, &ev.Campaign.CreatorID} {
		if !within(*id, value) {
			*id = bytes.Clone(*id)
		}
	}
}

// within tells whether s lies in buf's memory (an empty s does).
func within(s, buf []byte) bool {
	if len(s) == 0 {
		return true
	}
	p, b := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= b && p+uintptr(len(s)) <= b+uintptr(len(buf))
}
