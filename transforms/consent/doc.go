// Package consent holds each workspace's AI-training consent (SPEC §4,
// promises P3 and P6) and gates events on it, at ingest and again at
// publication.
//
// Settings records are applied in order, one workspace at a time: a
// workspace's first record sets its state whatever the role; an opt-out is
// always honoured; an opt-in counts only from an owner or admin; deletion is
// final. A workspace without a record fails closed (ReasonConsentUnknown)
// unless the configuration says to include unknown workspaces.
//
// The store keeps the raw workspace id only to name a withdrawn workspace in
// the exclusion log; everything it hands the pipeline is keyed by pseudonym.
package consent
