// Package deadletter keeps malformed records in file mode (contract §3.1): one
// NDJSON file per input partition under <out>/dead-letters, one line per
// record with its position, the reason, and the record's length and
// SHA-256 — not its bytes.
//
// A line reads
//
//	{"source":"events-00.ndjson","partition":0,"offset":17,"reason":"missing_field",
//	 "field":"workspace_id","detail":"required","length":211,"sha256":"9f86d0…"}
//
// where reason, field and detail come from the pipeline.MalformedError
// (details name the rule broken, never the value; one that quotes 12 bytes
// of its record is replaced by QuotedWithheld), and length and sha256
// identify the record in the input, which keeps it for its own retention.
//
// Why not the bytes: a malformed record may be a private message, or
// belong to an opted-out or deleted workspace. dead_letters.keep_payload:
// true keeps them for debugging (a retention decision: the dead letters
// then hold raw input for as long as the output is kept), as
// "value_base64" (standard base64, so binary and invalid UTF-8 survive).
// Even then a record's bytes are withheld, and "payload_withheld" says why
// (Retention), when its event_type is or may be a message type, when its
// workspace is excluded at that moment (opted out, deleted, unreadable
// consent, unknown when unknown workspaces are excluded), or when the
// record is too broken to tell either (ScanEnvelope): fail closed.
//
// Guarantees:
//   - Write copies what it keeps: the caller may reuse its buffers;
//   - nothing written is durable until Flush, which appends the buffered
//     lines and fsyncs the file; a failed Flush leaves the file as it was;
//   - no duplicates across restarts: a writer opened on an existing file
//     drops a torn last line (a Flush that never completed) and skips every
//     record whose offset is not above the last one in the file, so a
//     replay from a checkpoint does not write a record twice. This relies on
//     a partition's records arriving in offset order, as sources deliver
//     them;
//   - writers of different partitions share nothing and may run
//     concurrently; one partition has one writer at a time.
//
// Dead letters are written readable by the owner only (0600 in a 0700
// directory). In streaming mode dead letters go to a Kafka topic instead
// (sinks/kafkadlq), as the same JSON.
package deadletter
