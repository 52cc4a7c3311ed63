// Package objstore is where deid's outputs and state can live: a local
// directory or an S3 bucket (s3://bucket/prefix, AWS S3 or any
// S3-compatible store), behind one small Store interface with the same keys,
// the same bytes and the same commit semantics on both.
//
// Guarantees:
//
//   - An object is written whole or not at all: a reader never sees part of
//     it. Local writes it under a temporary name in its final directory,
//     fsyncs it, renames (or links) it into place and fsyncs the directory;
//     S3 sends one PUT, or above storage.s3.multipart_threshold a multipart
//     upload that is completed only once every part is stored (and aborted
//     otherwise).
//   - A conditional create (PutOptions.IfNotExists) is atomic: of any number
//     of writers racing on one key exactly one succeeds and every other gets
//     ErrExists, and the object keeps the winner's bytes. Local uses a hard
//     link, which fails when the name exists; S3 sends If-None-Match: *,
//     which the store answers with 412 Precondition Failed. This is what
//     lets a window's manifest, written last, commit the window once. A
//     store that ignores If-None-Match would let two writers both "win":
//     Probe finds that out before anything is written, and deid refuses to
//     run there.
//   - Transient failures of S3 (5xx answers, throttling such as 503 SlowDown,
//     connection refused or reset, timeouts) are retried with exponential
//     backoff for at most storage.s3.retry_budget; anything else (access
//     denied, no such bucket, a precondition failed) is returned at once.
//     When a conditional create is retried after an attempt whose outcome
//     was unknown, an object found in its place with the same bytes is taken
//     as that attempt's success, not as ErrExists.
//   - Credentials come only from the standard AWS chain (environment, shared
//     config and credentials files, web identity, container and instance
//     roles). The configuration has no field for them, and nothing here logs
//     a request, a header or a credential.
//
// What it never does: replace an object on a conditional create, leave a
// partial object visible, or retry an error that retrying cannot fix.
//
// Limits, said plainly: on Local a key cannot be both an object and the
// parent of another ("a" and "a/b"), as it can on S3; deid's layouts never
// do that. Local's conditional create is atomic where the file system has
// hard links (every local file system deid targets); on one without, it
// falls back to a check before the rename, which two processes could race.
// Get retries only until the object starts to arrive: a failure
// while reading the body is the reader's error.
package objstore
