// Package kafkadlq is deid's dead-letter sink for streaming mode: each
// malformed record (contract §3.1) is produced to a Kafka topic, by default
// "<group>.dead-letters". The value is the dead letter as JSON, the same
// deadletter.Line a file-mode run writes: the record's position, reason,
// detail, length and SHA-256 — not its bytes, which the source topic keeps
// for its own retention. dead_letters.keep_payload adds them
// ("value_base64"), unless the record is a message type, its workspace is
// excluded at that moment, it is too broken to tell, or it is larger than
// a dead letter carries ("payload_withheld" says which). Why and where it
// came from are also headers (deid.reason, deid.field, deid.detail,
// deid.source.topic, deid.source.partition, deid.source.offset), the way
// watermill's poison queue and franz-go's DLQ examples carry metadata.
//
// Guarantees: a dead letter is buffered by Write and durable once Flush
// returns nil (acknowledged by every in-sync replica), which the engine
// waits for before it commits the partition's checkpoint; Write keeps no
// reference to the record's bytes; a source partition's dead letters share
// a key, so they keep their order on one partition of the topic. Delivery is at least once: a
// failed Flush keeps its dead letters buffered and the next one sends them
// again, and a restart from a checkpoint produces them again.
//
// What it never does: decode the records (beyond finding event_type and
// workspace_id to decide what to keep), log their contents, or create
// the topic (deid never creates topics; with keep_payload, create it with
// the retention the organisation keeps raw input for).
package kafkadlq
