// Package kafka is deid's Kafka source: the event topics read as one member
// of a consumer group (a pipeline.StreamSource), the compacted settings
// topic followed from its beginning (Settings, contract §4), and a producer for
// loading generated samples (Producer). It speaks Kafka through
// github.com/segmentio/kafka-go. The connection (brokers, TLS, SASL,
// timeouts) and the retry rhythm it shares with the Kafka sinks live in
// internal/kafkaconn; Config embeds the connection inline.
//
// Reading. Source joins the group with kafka-go's ConsumerGroup; each
// generation assigns this instance some partitions, and each assigned
// partition gets its own PartitionReader: a connection to the partition's
// leader, one fetch per Next (kafka-go's Conn.ReadBatch and Batch.Read),
// every record's value read into a buffer the reader reuses. That is about
// a third of the CPU of kafka-go's Reader, which hands out one message at a
// time (BenchmarkConsume; docs/performance.md). Several deid instances
// sharing the group share the partitions.
//
// Guarantees:
//   - every record of an assigned partition is returned once per reader, in
//     offset order, from the position Open was given: the checkpoint's, else
//     the group's committed offset, else the earliest (or latest) offset;
//   - a tombstone or empty value is still a record (the engine dead-letters
//     it); nothing is filtered here;
//   - records are never skipped silently: an offset that is no longer (or
//     not yet) on the broker is an error naming the partition and the range,
//     unless offset_out_of_range says to move on;
//   - transient failures (leader changes, broker restarts, reset
//     connections, a coordinator moving) are retried inside the source with
//     bounded exponential backoff, reconnecting to the current leader; a
//     failure that outlasts kafka.retry_budget, or that retrying cannot fix,
//     is returned, naming the topic, partition and broker;
//   - offsets are committed to the group only when the engine says so
//     (after a checkpoint), with the generation's id: lag shows in the usual
//     tools, while the checkpoint stays the source of truth (contract §9);
//   - the settings follower applies records in offset order per partition
//     and never concurrently, and WaitCaughtUp fails closed: it returns only
//     when everything on the topic at the call has been applied.
//
// What it never does: filter, decode or log record contents; commit on its
// own; log or return a SASL password (it is read from an environment
// variable or a file, never from the configuration itself).
//
// A job of several instances (contract §13). Each worker's checkpoint name
// is committed as the offset-commit metadata of its partition, with the
// generation's id and member id, so the coordinator refuses a stale
// member's commit (ErrGenerationEnded) and the next owner finds the name
// (Generation.Committed, read when the generation is assigned). Fence asks
// the coordinator, with a heartbeat of the generation, whether this member
// still belongs to it; a member stopped past its session timeout learns
// there that it does not. Feed reads the partials topic as one member of
// the publisher group: close records, decoded, from the group's committed
// offset; a record that does not decode stops it, naming its position.
// InputPartitions, EndOffsets and GroupCommitted give the input's extent
// from the topic metadata, not from this instance's assignment, so every
// instance of a bounded job can tell when the whole job has read to the
// end. The partials topic is never created: Feed.Check (and the first
// Assign) name it and how to create it.
//
// A Kafka source never ends; the StopAtEnd option bounds each reader by the
// high-water mark its partition had when it was opened, for batch runs and
// benchmarks.
//
// Limitation: kafka-go's batch reader does not recognise transaction
// control batches, and deid reads with read_uncommitted. Topics written by
// transactional producers are not supported: their commit and abort
// markers would come out as (malformed) records, and aborted records would
// be read. The platform's producers are expected to be idempotent, not
// transactional.
package kafka
