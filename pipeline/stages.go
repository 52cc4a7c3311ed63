package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// PartitionReader reads one partition of the input: a Kafka
// topic-partition or one file.
type PartitionReader interface {
	// ID names the partition.
	ID() PartitionID
	// Next returns the next batch of records, in position order. It blocks
	// until at least one record is available, ctx is done (ctx.Err()), or
	// the input ends (io.EOF, with no records). The batch and the records'
	// Values are owned by the reader and valid until the second call to Next
	// after the one that returned them: the worker decodes one batch while
	// it gates the one before. Not safe for concurrent use.
	Next(ctx context.Context) ([]Record, error)
	// Close releases the partition. Safe to call more than once.
	Close() error
}

// Resume restores a partition's state from its checkpoint and returns the
// position to read next; ok is false when the partition has no checkpoint
// (next 0: a checkpoint taken before anything was read starts at the
// beginning too). A source calls it once for each partition it opens, before
// it positions the partition's reader. Run passes it; it is not safe for
// concurrent use.
type Resume func(id PartitionID) (next int64, ok bool)

// ErrCannotResume is wrapped by a source's Open when resume names a position
// at which the source cannot start a partition. Run then refuses to start:
// reading the partition from its beginning with the restored state would
// count its records twice. Run refuses the same way when a source opens a
// partition that has restored state without calling resume for it.
var ErrCannotResume = errors.New("the source cannot start the partition at its checkpointed position")

// Source is a finite input (files), read to its end.
type Source interface {
	// Open opens the input and returns one reader per partition, all at
	// once, in partition order. For each partition it calls resume (unless
	// resume is nil: no checkpoints) and starts the reader at the position
	// resume returns, or at the partition's first record when it returns
	// false or 0. A source that cannot start a partition at that position
	// returns an error wrapping ErrCannotResume; it never reads a partition
	// from its beginning with restored state. Open blocks while it opens the
	// input; ctx cancels it. On error nothing is left open.
	Open(ctx context.Context, resume Resume) ([]PartitionReader, error)
}

// MalformedError says why a record is malformed (contract §3.1). Code is a
// stable machine-readable reason (invalid_json, missing_field, wrong_type,
// invalid_value, negative_counter, implausible_counter, invalid_timestamp,
// future_timestamp, too_long, duplicate_field, empty_record); Field names the
// offending field, if any. Detail never holds a field's value: it may be
// personal data.
type MalformedError struct {
	Code   string
	Field  string
	Detail string
}

// Error renders "code: field: detail".
func (e *MalformedError) Error() string {
	s := e.Code
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Malformed builds a MalformedError.
func Malformed(code, field, format string, args ...any) *MalformedError {
	return &MalformedError{Code: code, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Decoder turns a record's bytes into a typed Event through the field
// allowlist (contract §3.3). Each worker owns one; not safe for concurrent use.
type Decoder interface {
	// Decode fills ev from value. It returns a *MalformedError when the
	// record is malformed; ev is then undefined. ev's byte slices alias value
	// or decoder-owned scratch buffers (unescaped ids), valid until the next
	// Decode.
	Decode(value []byte, ev *Event) error
}

// Gate is a stateless record gate (consent, age). Implementations are safe
// for concurrent use by all workers.
type Gate interface {
	// Check returns why ev must be excluded, or ReasonNone to pass it.
	Check(ev *Event) Reason
}

// Consent is the workspace consent state (contract §4), checked at ingest (as a
// Gate) and again at publication.
type Consent interface {
	Gate
	// AtPublish returns the reason to withdraw workspace ws's contributions
	// at publication (ReasonOptedOutBeforePublish, ReasonDeletedBeforePublish)
	// or ReasonNone, and the workspace's raw id for the exclusion log.
	AtPublish(ws Pseudonym) (Reason, string)
	// CaughtUp blocks until the consent state has read its source up to the
	// position current at the call (fail closed), or ctx is done.
	CaughtUp(ctx context.Context) error
	// PseudonymKey is the key the consent state pseudonymizes workspaces
	// with. The workers pseudonymize with it too, taking it from here, so
	// the two cannot differ. Never nil for a usable consent state.
	PseudonymKey() *PseudonymKey
}

// Aggregator adds events into one dataset's partials.
type Aggregator interface {
	// Spec is the dataset's declaration.
	Spec() *DatasetSpec
	// Add aggregates ev, of a kind the dataset takes, into p under its
	// level-0 cell; ws is ev's pseudonymized workspace and pz pseudonymizes
	// the other entities. Overflow marks the contribution, never panics.
	// Safe for concurrent use on different partials.
	Add(p *Partial, ev *Event, ws Pseudonym, pz *Pseudonymizer)
}

// GateResult is what the privacy gate makes of one merged window.
type GateResult struct {
	// Rows are the published rows, sorted by dimension values then level.
	Rows []Row
	// Suppressed are the cells that still failed at the last ladder step.
	Suppressed      []CellExclusion
	PublishedEvents int64
	EventsByLevel   map[int]int64
}

// PrivacyGate applies k-anonymity, dominance, the p% rule and
// generalization to a merged window (contract §7).
type PrivacyGate interface {
	// Apply never modifies p. Safe for concurrent use.
	Apply(spec *DatasetSpec, p *Partial) (*GateResult, error)
}

// ErrCommittedElsewhere is wrapped by DatasetSink.Commit's error when
// another writer committed the window first (the sink's conditional create
// of its manifest was refused): the window is published, by the other
// writer, and stays as they wrote it. The publisher records it in the
// summary and goes on.
var ErrCommittedElsewhere = errors.New("window already committed by another writer")

// DatasetSink commits published dataset windows.
type DatasetSink interface {
	// Commit writes the window's data files, then its manifest, which is
	// the commit: before it, nothing of the window is visible to readers.
	// Safe for concurrent use for different windows.
	Commit(ctx context.Context, out *WindowOutput) error
	// Published tells whether the window's manifest already exists.
	Published(dataset string, w Window) (bool, error)
}

// ExclusionLog opens hash chains of exclusion-log segments.
type ExclusionLog interface {
	// Chain opens (or resumes) the named chain: a partition's id string, or
	// "publish" for publish-time entries.
	Chain(name string) (ExclusionChain, error)
}

// ExclusionChain buffers entries and commits them as segments, each naming
// the SHA-256 of the previous one. Not safe for concurrent use.
type ExclusionChain interface {
	// Append buffers e; nothing is visible until Commit.
	Append(e *Exclusion) error
	// Commit writes the buffered entries as one segment (fsynced, renamed
	// into place) recording acct when non-nil, and returns the new chain
	// head. With nothing buffered and acct nil it returns the current head.
	Commit(ctx context.Context, acct *PartitionAccounting) (string, error)
	// Head returns the hex SHA-256 of the newest committed segment ("" if none).
	Head() string
	// Seq returns the sequence number of the newest committed segment (0 if none).
	Seq() int
	// Rollback removes the segments after seq and drops what is buffered,
	// so the chain continues from segment seq. A restart rolls back to the
	// segment its checkpoint recorded.
	Rollback(seq int) error
}

// DeadLetterSink opens dead-letter writers.
type DeadLetterSink interface {
	// Writer returns the dead-letter writer of a partition.
	Writer(id PartitionID) (DeadLetterWriter, error)
}

// DeadLetterWriter keeps malformed records with their original bytes,
// position and reason. Not safe for concurrent use.
type DeadLetterWriter interface {
	// Write buffers rec (copying its Value) with the reason.
	Write(rec Record, reason *MalformedError) error
	// Flush makes everything written so far durable.
	Flush(ctx context.Context) error
	// Close flushes and releases the writer.
	Close() error
}
