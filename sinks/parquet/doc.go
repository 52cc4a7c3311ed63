// Package parquet is the dataset sink (contract §6.3): it writes each published
// dataset window as a Parquet file and commits it with a manifest.
//
// Layout, under the output directory <out>:
//
//	datasets/<dataset>/dt=YYYY-MM-DD[/hour=HH[/minute=MM]]/part-<hash>.parquet
//	datasets/<dataset>/dt=YYYY-MM-DD[/hour=HH[/minute=MM]]/_manifest.json
//	accounting/<dataset>/dt=YYYY-MM-DD[/hour=HH[/minute=MM]]/accounting.json
//
// hour=HH appears when windows are shorter than 24h, minute=MM when they are
// shorter than an hour, so every directory of a dataset has the same depth
// and readers that honour Hive partitioning (pyarrow, pandas, polars, DuckDB,
// Spark) read the dataset directory as is. <hash> is the first 16 hex digits
// of the SHA-256 of the file's content.
//
// Guarantees:
//   - the manifest is written last and is the commit: a directory is
//     complete if and only if its _manifest.json exists. Every file is
//     written under a hidden temporary name in its final directory, fsynced,
//     renamed into place, and the directory fsynced;
//   - published windows are immutable: Commit never replaces a manifest
//     (it publishes it with a hard link, which fails if one exists, even
//     one written by another process) and returns an error wrapping
//     ErrPublished;
//   - a commit that fails or is interrupted leaves no manifest; the data
//     file it may leave behind is removed by the next commit of the window
//     once that commit's manifest is in place, never before (another
//     writer may be committing the window, and a data file is named by its
//     bytes, so the one it would remove may be the one that writer
//     commits). A commit that does not happen removes its own data file
//     only when no manifest lists it, and one whose fence fails removes
//     nothing;
//   - the same WindowOutput gives a byte-identical data file: nothing in it
//     depends on the time or place of writing;
//   - a window with no rows still gets a data file, with the schema and no
//     row groups, so a dataset directory always shows its columns;
//   - a manifest carries nothing finer than k (the ML team reads it): the
//     data files, schema, privacy parameters, rows and events published per
//     level, the exclusion chain heads, and the SHA-256 of the window's
//     accounting record. That record, written before the manifest with
//     compliance-only permissions, holds what is finer: contributed,
//     withdrawn and suppressed events by reason, suppressed cells, and each
//     input partition's accounting and positions;
//   - the manifests of a dataset form a chain: each names the window and
//     SHA-256 of the manifest committed for the dataset just before it
//     (empty for the first). Windows of a dataset are committed in order;
//     Commit refuses a window before the dataset's newest, and reads the
//     newest from the output on its first commit of a dataset, so the chain
//     continues across restarts. A deleted or replaced window inside the
//     chain is therefore detected; deleting the newest is detected against
//     the anchor log (WithAnchors, package anchors), to which each manifest
//     is appended once committed (AnchorHeads appends the newest again at
//     start, in case a crash came between a commit and its anchor).
//
// With a signer (WithSigner), every manifest gets a detached ed25519
// signature, _manifest.json.sig (package signing), written before the
// manifest is published; readers that honour Hive partitioning skip it like
// the manifest, its name starting with '_'.
//
// Data files: window_start and window_end as TIMESTAMP(MICROS, UTC), each
// dimension as a dictionary-encoded string, generalization_level INT32,
// counters INT64, ratios DOUBLE (null when undefined), in that order, rows
// in the order given (sorted by dimensions by the privacy gate). Dimensions
// are never null but are declared optional: arrow-go v17 writes a negative
// null count into the statistics of a required dictionary column. Snappy (or
// Zstd), row groups of at most 1Mi rows and 128 MiB (configurable). The
// key-value metadata names the dataset, schema version, privacy parameters,
// pipeline and policy versions and the window; the Arrow schema is stored
// too, so Arrow readers get the dictionary types back.
//
// The sink never sees an identifier: rows hold generalized dimension values
// and aggregates only. ReadManifest, ListManifests, ReadRows and
// ReadMetadata read outputs back, for tests and for deid verify.
package parquet
