package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// A window's dedup keys are checkpointed incrementally, as runs: objects
// of keys, 16 bytes each, in the order they were added. A checkpoint first
// writes the keys its window gained since the checkpoint before as one new
// run, then names the window's runs; a restart reads those runs and nothing
// else (keys added after the checkpoint come back as the input is read again
// from its position). So a checkpoint writes what was added since the one
// before, not the whole set again, and never appends to an object: object
// stores have no append, and an object is never half-written.
//
// A window open for a day with a checkpoint every ten seconds would gather
// thousands of runs, so they are merged as they come (a tiered scheme):
// when keyRunFanout runs of one level would stand at the end of the list,
// they are read back and written as one run of the next level instead. A
// key is then written about log_8(runs) + 1 times, and a window has at most
// 7 runs per level. Merged runs are deleted once a checkpoint that no longer
// names them is durable.
//
// Between checkpoints the new keys wait in memory; a window that gains
// keyLogSpill bytes of them writes a run early, so that memory stays bounded
// however many events a checkpoint interval brings.

// keyRun is one run of a window's keys.
type keyRun struct {
	// Seq is the checkpoint the run was written for, and N its number
	// among that checkpoint's runs: together they name it.
	Seq int64
	N   int
	// Level is 0 for keys as they were added, L+1 for keyRunFanout runs of
	// level L merged.
	Level int
	Keys  int64
}

// keyRunFanout is how many runs of one level are merged into one.
const keyRunFanout = 8

// keyLogSpill is how many bytes of new keys a window holds in memory
// before it writes them as a run without waiting for the checkpoint.
const keyLogSpill = 4 << 20

// keyLogSuffix ends a run's name.
const keyLogSuffix = ".keys"

func (p *partitionState) runKey(start int64, r keyRun) string {
	return p.prefix + keysDir + strconv.FormatInt(start, 10) + "/" + formatSeq(r.Seq) + "-" + strconv.Itoa(r.N) + keyLogSuffix
}

// keyLog is the key log of one open window. Not safe for concurrent use.
type keyLog struct {
	p     *partitionState
	start int64
	// runs are the window's runs written so far, oldest first.
	runs []keyRun
	// pending holds the keys added since the last run, end to end.
	pending []byte
	// n counts the keys, pending ones included.
	n int64
}

// newKeyLog returns the key log of a window opened since the last
// checkpoint.
func (p *partitionState) newKeyLog(start int64) *keyLog {
	l := &keyLog{p: p, start: start, pending: p.spareKeys}
	p.spareKeys = nil
	return l
}

// resumeKeyLog returns the key log of a window as its checkpoint left it.
func (p *partitionState) resumeKeyLog(ws *windowSnap) *keyLog {
	return &keyLog{p: p, start: ws.W.Start, runs: ws.Runs, n: ws.Keys}
}

// add appends k.
func (l *keyLog) add(k dedupKey) {
	l.pending = append(l.pending, k[:]...)
	l.n++
}

// full tells whether the pending keys should be written without waiting
// for the checkpoint.
func (l *keyLog) full() bool { return len(l.pending) >= keyLogSpill }

// flush writes the pending keys as a run (merging runs as keyRunFanout
// says) and returns the number of keys in the log's runs, all durable.
func (l *keyLog) flush(ctx context.Context) (int64, error) {
	if len(l.pending) == 0 {
		return l.n, nil
	}
	data, level := l.pending, 0
	var merged []keyRun
	for len(l.runs) >= keyRunFanout-1 {
		tail := l.runs[len(l.runs)-(keyRunFanout-1):]
		same := true
		for _, r := range tail {
			same = same && r.Level == level
		}
		if !same {
			break
		}
		var size int64
		for _, r := range tail {
			size += r.Keys * int64(len(dedupKey{}))
		}
		buf := make([]byte, 0, size+int64(len(data)))
		for _, r := range tail {
			b, err := l.p.readRun(ctx, l.start, r)
			if err != nil {
				return 0, err
			}
			buf = append(buf, b...)
		}
		data = append(buf, data...)
		merged = append(merged, tail...)
		l.runs = l.runs[:len(l.runs)-len(tail)]
		level++
	}
	r := keyRun{Seq: l.p.seq + 1, N: l.p.runs, Level: level, Keys: int64(len(data) / len(dedupKey{}))}
	l.p.runs++
	if err := l.p.s.store.Put(ctx, l.p.runKey(l.start, r), data, false); err != nil {
		return 0, fmt.Errorf("checkpoints: dedup keys of window %d: %w", l.start, err)
	}
	l.runs = append(l.runs, r)
	for _, m := range merged {
		l.p.garbage = append(l.p.garbage, l.p.runKey(l.start, m))
	}
	l.pending = l.pending[:0]
	return l.n, nil
}

// discard gives up the log of a closed window: its runs are deleted once
// the next checkpoint (which no longer names the window) is durable.
func (l *keyLog) discard() {
	for _, r := range l.runs {
		l.p.garbage = append(l.p.garbage, l.p.runKey(l.start, r))
	}
	if cap(l.pending) > cap(l.p.spareKeys) {
		l.p.spareKeys = l.pending[:0]
	}
	l.runs, l.pending = nil, nil
}

// readRun returns a run's keys, end to end.
func (p *partitionState) readRun(ctx context.Context, start int64, r keyRun) ([]byte, error) {
	key := p.runKey(start, r)
	b, err := p.s.store.Get(ctx, key)
	if errors.Is(err, ErrStateNotFound) {
		return nil, damaged("window %d's checkpoint names dedup keys in %s, which is missing", start, key)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: dedup keys of window %d: %w", start, err)
	}
	if int64(len(b)) != r.Keys*int64(len(dedupKey{})) {
		return nil, damaged("%s holds %d bytes, not the %d dedup keys its checkpoint counts", key, len(b), r.Keys)
	}
	return b, nil
}

// readKeys returns the dedup keys of a window as its checkpoint left them,
// end to end.
func (p *partitionState) readKeys(ctx context.Context, ws *windowSnap) ([]byte, error) {
	keys := make([]byte, 0, ws.Keys*int64(len(dedupKey{})))
	for _, r := range ws.Runs {
		b, err := p.readRun(ctx, ws.W.Start, r)
		if err != nil {
			return nil, err
		}
		keys = append(keys, b...)
	}
	return keys, nil
}
