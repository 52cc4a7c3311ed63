// Package verify checks a deid output directory against the promises of
// SPEC §1 and the accounting of SPEC §8, and says what it found in plain
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
//   - the exclusion log's hash chain per partition (a deleted, reordered or
//     edited segment is named), and that every chain head a manifest
//     records is a segment of its chain, with the accounting the manifest
//     records for that partition;
//   - the accounting identities: per partition read = contributed +
//     excluded + dead letters, per window contributed = published +
//     withdrawn + suppressed; that the log's entries and the dead letters
//     agree with those counts, reason by reason;
//   - every published row: k for each protected entity, from the counts in
//     the row; dimension values that the row's generalization level can
//     take; no two rows for one cell; only declared columns, of the
//     declared types, and none that could hold an identifier or free text;
//   - with the input: its own reading of each line and of the settings
//     (encoding/json and the rules of SPEC §4, not deid's decoder or
//     consent store; only whether one settings record is readable, and
//     whom an unreadable one names, is decided by the consent package's
//     reader, so both sides agree) decides which records had to be
//     excluded — opted-out, deleted, unreadable-consent and unknown
//     workspaces, messages, minors — and proves each one has an exclusion
//     entry or a dead letter, or was withdrawn at publication (consent that
//     changed after ingest), so none contributed; that the settings chain
//     logs exactly the settings records that name no workspace; and no
//     free-text value of the input (message bodies, captions, comments, any
//     long string of a field outside the allowlist) occurs in any output but
//     the dead letters, with Parquet decoded so compression hides nothing;
//   - with a public key, the ed25519 signature of every manifest and every
//     segment (package signing); without one it says the log is hash-chained
//     but unsigned.
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
