// Package consent holds each workspace's AI-training consent (contract §4,
// promises P3 and P6) and gates events on it, at ingest and again at
// publication.
//
// Settings records are applied in order, one workspace at a time: a
// workspace's first record sets its state whatever the role; an opt-out is
// always honoured; an opt-in counts only from an owner or admin; deletion is
// final. A workspace without a record fails closed (ReasonConsentUnknown)
// unless the configuration says to include unknown workspaces.
//
// A settings record is read strictly (Read): wrong types, duplicate keys,
// trailing data, a missing or unknown role, an over-long line all make it
// unreadable, never skipped. An unreadable record excludes every workspace
// it can be attributed to (its key, or a workspace_id string found in it)
// from then on, reason consent_unreadable, until a readable record changes
// that under the usual rules. One that names no workspace stops the load,
// or fails the store so that nothing more is published, unless
// consent.unattributable is skip. verify and exclusions read settings with
// the same Scan, so both sides agree on what is readable.
//
// The store keeps the raw workspace id only to name a withdrawn workspace in
// the exclusion log; everything it hands the pipeline is keyed by pseudonym.
package consent
