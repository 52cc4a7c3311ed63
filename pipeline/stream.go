package pipeline

import (
	"context"
	"errors"
)

// ErrGenerationEnded is wrapped by a stream source's reader (Next) or
// Commit once a rebalance has ended the generation. It is benign: the
// checkpoint is the source of truth, so the engine checkpoints, stops the
// generation's workers and asks for the next one.
var ErrGenerationEnded = errors.New("the consumer group generation has ended (a rebalance)")

// StreamSource is an unbounded source whose partitions are assigned
// dynamically, as a Kafka consumer group assigns them. The engine works one
// generation at a time: it opens the generation's partitions at the
// positions its checkpoints name, works them until the generation ends, then
// checkpoints and asks for the next one.
type StreamSource interface {
	// Assign blocks until this instance joins a generation of the group, or
	// ctx is done. Errors are infrastructure failures the source could not
	// recover from with its own bounded retries.
	Assign(ctx context.Context) (Generation, error)
	// Close leaves the group and releases the source.
	Close() error
}

// Generation is one assignment of partitions to this instance.
type Generation interface {
	// Partitions lists the partitions assigned in this generation, sorted.
	Partitions() []PartitionID
	// Open opens a reader for each assigned partition, under the contract
	// of Source.Open: it calls resume for each partition, and the reader
	// starts at the offset resume returns, or fails with an error wrapping
	// ErrCannotResume. When resume returns false (no checkpoint) the reader
	// starts at the source's own position for the partition: the group's
	// committed offset, or the earliest offset when the group has none.
	Open(ctx context.Context, resume Resume) ([]PartitionReader, error)
	// Done is closed when the generation ends (a rebalance, or the source
	// closing); the engine then stops its workers, checkpoints and calls
	// Assign again.
	Done() <-chan struct{}
	// Commit commits, for each partition, the next offset to read to the
	// consumer group, so lag shows in the usual tools. The engine calls it
	// after each checkpoint; the checkpoint stays the source of truth.
	Commit(ctx context.Context, next map[PartitionID]int64) error
}
