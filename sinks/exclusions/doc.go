// Package exclusions is the tamper-evident exclusion log (contract §8): every
// excluded record, withdrawn contribution and suppressed cell, written as
// hash-chained Parquet segments that compliance can verify.
//
// Layout, under the output directory <out>:
//
//	exclusions/<chain>/segment-000001.parquet
//	exclusions/<chain>/segment-000002.parquet …
//
// A chain is a partition ("events-00.ndjson[0]", "events[3]") or "publish"
// for publish-time entries; <chain> is its name encoded injectively into one
// file-system-safe path element ("events-00.ndjson[0]" →
// "events-00.ndjson%5B0%5D").
//
// Each segment records, in its key-value metadata, the chain's name, its
// sequence number, the hex SHA-256 of the previous segment's file
// (prev_sha256, empty for the first), its entry count and, when given, the
// partition's accounting at the commit. The chain's head is the SHA-256 of
// the newest segment's file; window manifests record the heads. VerifyChain
// recomputes every hash and checks every link, so a deleted, reordered,
// replaced or edited segment is detected and named; deleting the newest
// segments is detected by comparing with the heads the manifests record.
//
// With a signer (WithSigner), each segment gets a detached ed25519
// signature beside it, segment-000001.parquet.sig (package signing), written
// before the segment is published; a signature whose segment is missing is
// reported by VerifyChain, since it means the segment was deleted.
//
// With an anchor log (WithAnchors, package anchors), each committed segment
// is also anchored outside the output before Commit returns; opening a
// chain anchors its newest segment again (a crash may have come between a
// commit and its anchor), and Rollback anchors a rollback line before it
// removes anything, since the segments written again after a restart differ
// in their decision times. Deleting the newest segments with the windows
// that name them is detected against the anchors.
//
// Guarantees:
//   - nothing appended is visible until Commit; a segment is written under
//     a temporary name, fsynced, published under its sequence number only if
//     no segment has it (a hard link, so even another process cannot be
//     overwritten), and the directory fsynced;
//   - a failed Commit keeps the entries buffered and changes nothing on
//     disk that a reader would see;
//   - Chain resumes an existing chain from its newest segment;
//   - an entry holds the record's identity (event_id, event_type, raw
//     workspace_id), its position, event time, reason, policy version and
//     decision time, or for a cell its dataset, window, level, dimension
//     values and counts. Never any payload field: the segment schema has no
//     column that could hold one.
//
// Files are readable by compliance only (0640): the log keeps raw workspace
// ids, as contract §11 requires, and nothing else that identifies a person.
package exclusions
