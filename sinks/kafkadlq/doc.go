// Package kafkadlq is deid's dead-letter sink for streaming mode: each
// malformed record (SPEC §3.1) is produced to a Kafka topic, by default
// "<group>.dead-letters", with its original bytes as the value and why and
// where it came from as headers (deid.reason, deid.field, deid.detail,
// deid.source.topic, deid.source.partition, deid.source.offset), the way
// watermill's poison queue and franz-go's DLQ examples carry metadata.
//
// Guarantees: a dead letter is buffered by Write and durable once Flush
// returns nil (acknowledged by every in-sync replica), which the engine
// waits for before it commits the partition's checkpoint; the value is the
// record's bytes exactly, copied at Write (an empty record has an empty
// value); a source partition's dead letters share a key, so they keep
// their order on one partition of the topic. Delivery is at least once: a
// failed Flush keeps its dead letters buffered and the next one sends them
// again, and a restart from a checkpoint produces them again.
//
// What it never does: decode, trim or log the records' contents, or create
// the topic (deid never creates topics; create it with the retention the
// organisation keeps raw input for).
package kafkadlq
