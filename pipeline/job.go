package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// A job of several instances (contract §13) splits the engine in two
// stages that meet in the state store and on a partials topic:
//
//   - stage 1, on every instance: the workers of the input partitions the
//     consumer group assigns to it. When a worker closes a window it writes
//     the window's partial of each dataset to the state store as a blob
//     named by its content, checkpoints, commits the checkpoint's name with
//     the partition's offset (fenced by the group generation), and only then
//     sends a CloseRecord per dataset to the partials topic;
//   - stage 2, on the instance the publisher group assigns the partials
//     topic to: it gathers close records and publishes a window once every
//     partition of the input topics (their metadata, not the partitions it
//     happened to hear of) has closed it.
//
// The types here are what the two stages and their Kafka transport share.

// ClosedWindow is one window of one dataset that a partition closed with
// data: the blob of its partial in the state store, and the blob's SHA-256.
type ClosedWindow struct {
	Window Window `json:"window"`
	// Blob is the partial's key in the state store.
	Blob string `json:"blob"`
	// SHA256 is the hex SHA-256 of the blob's bytes.
	SHA256 string `json:"sha256"`
	// Events is the partial's event count.
	Events int64 `json:"events"`
}

// CloseRecord tells stage 2 that a partition has closed, for one dataset,
// every window ending at or before ClosedEnd, and where the partials of
// those of them that have data are. It is sent after the checkpoint that
// covers them is committed, and sent again after every restart until the
// windows are published: duplicates are harmless.
type CloseRecord struct {
	// Version is the record's format, CloseRecordVersion.
	Version   int         `json:"version"`
	Dataset   string      `json:"dataset"`
	Partition PartitionID `json:"partition"`
	// ClosedEnd: every window ending at or before it is closed in the
	// partition (math.MaxInt64 once the partition's input ended).
	ClosedEnd int64 `json:"closed_end"`
	// Windows are the dataset's closed windows with data that the
	// partition has not seen published.
	Windows []ClosedWindow `json:"windows,omitempty"`
	// Acct is the partition's accounting at the close.
	Acct PartitionAccounting `json:"accounting"`
	// Head is the partition's exclusion chain head at the close.
	Head string `json:"chain_head"`
	// Checkpoint names the committed checkpoint that covers the close.
	Checkpoint string `json:"checkpoint"`
}

// CloseRecordVersion is the format of close records this deid writes and reads.
const CloseRecordVersion = 1

// EncodeCloseRecord renders r as the value of a partials-topic message.
func EncodeCloseRecord(r *CloseRecord) ([]byte, error) {
	r.Version = CloseRecordVersion
	return json.Marshal(r)
}

// DecodeCloseRecord reads a partials-topic message value, refusing another
// format or a record without a dataset or partition.
func DecodeCloseRecord(b []byte) (*CloseRecord, error) {
	var r CloseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("close record: %w", err)
	}
	if r.Version != CloseRecordVersion {
		return nil, fmt.Errorf("close record: format %d, and this deid reads format %d: run one deid version per job", r.Version, CloseRecordVersion)
	}
	if r.Dataset == "" || r.Partition.Source == "" {
		return nil, errors.New("close record: no dataset or no partition")
	}
	return &r, nil
}

// CloseSink sends close records to stage 2 (the partials topic).
type CloseSink interface {
	// Send makes the records durable on the partials topic (every in-sync
	// replica acknowledged them), in order, or fails. Safe for concurrent
	// use.
	Send(ctx context.Context, recs []CloseRecord) error
}

// ErrFenced is wrapped by a stage-1 error when the consumer group has given
// the partition to another member (its generation is over): the partition's
// lineage of checkpoints is the other member's now, so the worker drops its
// state and writes nothing more for it.
var ErrFenced = errors.New("fenced: the consumer group has given the partition to another member")

// Fenced tells whether err means that this instance lost its partition
// (ErrFenced, or a generation that ended before a commit was accepted).
// ErrChainAdvanced is wrapped by an exclusion chain's Commit when the
// segment it would write is already there: another writer advanced the
// chain. In a job of several instances that writer is a fenced former
// owner of the partition, or this one is.
var ErrChainAdvanced = errors.New("another writer advanced the exclusion chain")

// chainHealer is an ExclusionChain that can remove the one segment a
// fenced former owner wrote after the chain's newest (DropForeign), with
// a rollback line in the anchor log first.
type chainHealer interface {
	DropForeign(ctx context.Context, seq int) error
}

func Fenced(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrGenerationEnded)
}
