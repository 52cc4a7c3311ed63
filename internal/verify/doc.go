// Package verify checks a deid output directory against the promises of
// contract §1 and the accounting of contract §8, and says what it found in plain
// language: the engine of `deid verify`, `deid exclusions` and the figures
// of `deid report`.
//
// Run reads everything under <out> — manifests, data files, the exclusion
// log, dead letters, signatures — and, when given the input and the
// settings of a file-mode run, the input too, and returns a Report: one
// Check per property, each passed, failed (with every problem named) or a
// note (something that cannot be proven from what is there, said plainly).
//
// What it checks:
//   - every manifest, and the size, row count and SHA-256 of every file it
//     lists; no data file that no manifest lists (readers would read it);
//   - that each dataset's manifests form one chain, each naming the SHA-256
//     of the one committed before it: a window deleted or replaced between
//     the first and the newest is named;
//   - that each window's accounting record (<out>/accounting/…) is there
//     and is the one its manifest names by SHA-256;
//   - the exclusion log's hash chain per partition (a deleted, reordered or
//     edited segment is named), and that every chain head a manifest
//     records is a segment of its chain, with the accounting the window's
//     accounting record holds for that partition;
//   - the accounting identities: per partition read = contributed +
//     excluded + dead letters, per window contributed = published +
//     withdrawn + suppressed; that the log's entries and the dead letters
//     agree with those counts, reason by reason;
//   - every published row: k for each protected entity, from the counts in
//     the row; dimension values that the row's <dimension>_level columns
//     can take, levels that are the ladder's at its generalization level
//     (strategy ladder) or add up to it (mondrian); no two rows for one
//     cell, and no two rows whose cells overlap without one containing the
//     other, whatever the strategy; only declared columns, of the declared
//     types, and none that could hold an identifier or free text;
//   - with the input: its own reading of each line and of the settings
//     (encoding/json and the rules of contract §4, not deid's decoder or
//     consent store; only whether one settings record is readable, and
//     whom an unreadable one names, is decided by the consent package's
//     reader, so both sides agree) decides which records had to be
//     excluded — opted-out, deleted, unreadable-consent and unknown
//     workspaces, messages, minors — and proves each one has an exclusion
//     entry or a dead letter, or was withdrawn at publication (consent that
//     changed after ingest), so none contributed; that the settings chain
//     logs exactly the settings records that name no workspace; and no
//     free-text value of the input (message bodies, captions, comments, any
//     long string of a field outside the allowlist) occurs in any output,
//     with Parquet decoded so compression hides nothing, and no dead letter's
//     detail or field quotes one (the record bytes a dead letter keeps under
//     dead_letters.keep_payload are a retention decision: counted in a note);
//   - the dead letters: each names its record by length and SHA-256, and
//     none keeps the bytes of a message, of a workspace whose records are
//     excluded, or of a record too broken to tell (with the input, verify's
//     own reading of the line decides too);
//   - with a public key, the ed25519 signature of every manifest and every
//     segment (package signing); without one it says the log is hash-chained
//     but unsigned;
//   - with an anchor log (package anchors), that everything it anchors is
//     in the output with the hash anchored: deleting the newest windows
//     together with the exclusion segments after them leaves intact chains,
//     and only the anchors, kept outside the output, tell. Without one it
//     says that such a truncation cannot be detected. The report ends with
//     the chain heads, for compliance to archive.
//
// What it cannot check, and says so: dominance and the p% rule need
// per-workspace totals, which no output holds by design.
//
// It lives under internal/ because nothing outside this module needs it:
// the command line (`deid verify`, its output and exit status) is the
// interface compliance uses, and the Go API can change with it.
//
// verify reads only; it never writes to the output directory. It is not
// the hot path: it favours plain code (encoding/json, whole files in
// memory) over speed, and reads a 200 000-record output in seconds.
package verify
