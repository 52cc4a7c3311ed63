// Package anchors is the anchor log: one JSON line per commit of the output
// (a dataset window's manifest, an exclusion-log segment), appended to a
// file or a Kafka topic outside the output directory.
//
// Hash chains inside the output detect a deleted or edited link in the
// middle, but not tail truncation: deleting the newest windows together with
// the exclusion segments after them leaves shorter chains that are still
// intact. The anchor log lives in another trust domain (another disk, host
// or a topic with infinite retention), so `deid verify --anchors` can tell
// that something anchored is gone.
//
// Guarantees: a line is appended after its commit is durable and before the
// commit is reported done, and the file is fsynced after each line; a commit
// whose anchor cannot be written fails, so a run never goes on with an
// unanchored commit behind it. A restart re-appends the newest commit of
// every chain (a crash may have come between a commit and its anchor), so
// exact duplicate lines are expected. A restart that rolls a chain back
// appends a rollback line before it removes anything, so the segments
// written again after it may differ from those anchored before it.
//
// The package never reads the output and never rewrites a line.
package anchors
