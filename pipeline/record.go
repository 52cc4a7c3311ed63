package pipeline

import "fmt"

// Position says where an input record came from: a Kafka topic-partition and
// offset, or an input file and line number (1-based).
type Position struct {
	// Source is the topic name, or the input file's name.
	Source string
	// Partition is the Kafka partition; 0 for files.
	Partition int32
	// Offset is the Kafka offset, or the line number in a file.
	Offset int64
}

// String renders a position as "source[partition]@offset".
func (p Position) String() string {
	return fmt.Sprintf("%s[%d]@%d", p.Source, p.Partition, p.Offset)
}

// PartitionID names one partition of the input: a topic-partition or a file.
type PartitionID struct {
	Source    string
	Partition int32
}

// String renders a partition id as "source[partition]".
func (id PartitionID) String() string { return fmt.Sprintf("%s[%d]", id.Source, id.Partition) }

// Record is one raw input record: a Kafka message value or one line of an
// NDJSON file, with its position. Value is owned by the source until the
// worker has finished with the batch it came in; nothing may keep it.
type Record struct {
	Pos   Position
	Value []byte
	// Err is set by a source that already knows the record is malformed
	// (a line longer than the reader's limit, whose Value is cut short).
	Err *MalformedError
}
