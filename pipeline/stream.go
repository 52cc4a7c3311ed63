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
	// closing); the engine then stops its workers, checkpoints, calls
	// Release and calls Assign again.
	Done() <-chan struct{}
	// Release tells the source that the engine is done with the
	// generation: its workers have stopped and made their last
	// checkpoints and commits. A source may hold the group's next
	// rebalance until then, so that those commits are still accepted under
	// this generation and the partitions' next owners resume where this
	// one stopped instead of reading again. The engine calls it once per
	// generation, on every path out of it.
	Release()
	// Commit commits, for each partition, the next offset to read and the
	// name of the checkpoint that holds the partition's state at that
	// offset (offset-commit metadata), with this generation's id and member
	// id, so that lag shows in the usual tools and the next owner of the
	// partition finds its checkpoint. The engine calls it after each
	// checkpoint. Once the group has moved to another generation the
	// coordinator refuses it: the error wraps ErrGenerationEnded.
	Commit(ctx context.Context, next map[PartitionID]Committed) error
	// Committed returns the checkpoint name the group's committed offset of
	// the partition carried when the generation began ("" when none).
	Committed(id PartitionID) string
	// ID is the generation's number in the group (it grows with every
	// rebalance).
	ID() int32
	// Fence asks the group coordinator whether this member still belongs
	// to the generation: nil when it does, an error wrapping
	// ErrGenerationEnded when the group has moved on (another member may
	// own the partitions now). A job of several instances calls it before
	// each write to shared state, so that an instance that was stopped past
	// its session timeout writes nothing after it wakes.
	Fence(ctx context.Context) error
}

// Committed is what a worker commits for its partition: the next offset to
// read and the checkpoint that holds the partition's state there.
type Committed struct {
	Next       int64
	Checkpoint string
}

// CloseFeed is stage 2's input in a job of several instances: the partials
// topic, read as one member of the publisher group.
type CloseFeed interface {
	// Assign blocks until this instance joins a generation of the
	// publisher group, or ctx is done.
	Assign(ctx context.Context) (FeedGeneration, error)
	// Close leaves the group.
	Close() error
}

// FeedGeneration is one assignment of partials-topic partitions.
type FeedGeneration interface {
	// Partitions lists the assigned partials-topic partitions (possibly none).
	Partitions() []int32
	// Next returns the next close record of any assigned partition with
	// its position, reading each partition from its committed offset (the
	// earliest when none). It blocks until a record arrives, ctx is done,
	// or the generation ends (an error wrapping ErrGenerationEnded). A
	// record that cannot be decoded is an error naming its position: stage
	// 2 stops rather than publish without it.
	Next(ctx context.Context) (*CloseRecord, FeedPosition, error)
	// Done is closed when the generation ends.
	Done() <-chan struct{}
	// Commit commits, for each partials partition, the offset from which a
	// restart must read again (every record of a window not yet published
	// lies at or after it).
	Commit(ctx context.Context, next map[int32]int64) error
}

// FeedPosition is a close record's position on the partials topic.
type FeedPosition struct {
	Partition int32
	Offset    int64
}
