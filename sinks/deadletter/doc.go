// Package deadletter keeps malformed records in file mode (SPEC §3.1): one
// NDJSON file per input partition under <out>/dead-letters, one line per
// record with its position, the reason and the original bytes.
//
// A line reads
//
//	{"source":"events-00.ndjson","partition":0,"offset":17,"reason":"missing_field",
//	 "field":"workspace_id","detail":"…","value_base64":"eyJldmVudF9pZCI6…"}
//
// where value_base64 is the record exactly as read (standard base64, so
// binary and invalid UTF-8 survive), and reason, field and detail come from
// the pipeline.MalformedError.
//
// Guarantees:
//   - Write copies the record's bytes: the caller may reuse its buffers;
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
// Dead letters hold raw input, which may include anything the input held
// (message bodies, personal data): they are written readable by the owner
// only (0600 in a 0700 directory), and nothing else in deid reads them.
// In streaming mode dead letters go to a Kafka topic instead.
package deadletter
