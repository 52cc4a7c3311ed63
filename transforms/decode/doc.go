// Package decode is deid's allowlist decoder: it turns one input record's
// JSON bytes into a typed pipeline.Event (contract §3.1–§3.3, §3.6).
//
// It is the first privacy boundary of the pipeline (promises P1 and P4). A
// hand-written scanner reads only the allowlisted fields of the envelope and
// of the payload of each aggregated event type, straight from the bytes into
// the Event. Every other field — captions, message bodies, handles, e-mail
// addresses, anything added upstream tomorrow — is validated as JSON and
// skipped: its text is never materialized as a Go string, never copied into
// a buffer, never logged, and never appears in an error. The payload of a
// message or an unsupported event type is not read at all. Of dropped
// fields only their number per event kind is kept (DroppedFields): not even
// a dropped field's name, which can be data too (a phone number used as a
// key).
//
// Guarantees:
//   - a record is accepted only if it is one valid JSON object (as
//     encoding/json.Valid decides) no deeper than Config.MaxDepth, with no
//     allowlisted field twice in one object;
//   - a malformed record yields a *pipeline.MalformedError whose Code is one
//     of the Code* constants (invalid_json first, whatever else is wrong)
//     and whose Detail never quotes a value;
//   - ids are 1 to Config.MaxIDBytes bytes of valid UTF-8, counters integers
//     from 0 to 10^12, occurred_at an RFC 3339 timestamp converted to UTC
//     microseconds;
//   - dimension strings are trimmed, case-normalized and mapped into their
//     closed sets ("other" and "ZZ" otherwise); they are constants or
//     interned in a bounded table, so a well-formed record allocates nothing
//     in steady state.
//
// Decisions where the contract is silent: null is absent (so a null required
// field is missing_field); an empty user_id is no user_id; event_type is
// bounded to 128 bytes, since it is written to the exclusion log; message
// types are recognized without regard to ASCII case; creator_age must be 0
// to 150 and team_size 1 to 10^12, else invalid_value; a dimension string
// longer than Config.MaxDimensionBytes is too_long rather than "other", so
// free text pushed into a dimension field is noticed; occurred_at must use
// "T" and "Z" in upper case, as Go's time.RFC3339 parser requires.
//
// Two paths, one result: every record first meets the fast path
// (fast.go), which marks the record's quotes in one pass (stage1.go: AVX2
// assembly on amd64 processors that have AVX2, chosen at run time through
// golang.org/x/sys/cpu; portable Go everywhere else) and then reads the
// common shape of a record by that mask. Anything else — an escape, a
// control byte, whitespace between tokens, a non-ASCII byte in a kept
// value, null, a duplicate, a value out of its domain, any malformed
// record — goes to the exact decoder (decode.go, payload.go, scan.go),
// which reads the record from the start and alone decides whether it is
// malformed and why. The exact decoder is the fast path's oracle:
// FuzzFastDecode requires the same event, or the same error, for every
// input, and the package's tests run on every path.
//
// Ownership: an Event's ids alias the record's bytes, or, when written with
// JSON escapes, scratch buffers owned by the decoder; both are valid until
// the next Decode. A Decoder is owned by one worker: Decode is not safe for
// concurrent use. Decoders makes one per worker (pipeline.Stages.NewDecoder)
// and sums their dropped-field counts for metrics.
package decode
