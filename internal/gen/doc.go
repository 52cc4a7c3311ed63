// Package gen writes seeded, realistic sample input for deid: the event
// lines of a marketing platform's partitions and the workspace settings
// records (contract §3, §4), for "deid gen", "make run", tests and benchmarks.
//
// The sample is a world of workspaces with heavy-tailed (Zipf-like) event
// volumes, each with a team, campaigns and creators (power-law followers
// from 500 to 5M, shared between workspaces), and about 80%
// campaign.metrics, 15% usage.interaction and 5% hazards: message events
// with bodies, PII fields in campaign payloads, canary strings
// (CanaryMarker) in free text, unsupported event types, opted-out, deleted
// (also by a tombstone-like record), unknown and re-opted-in workspaces,
// minors with and without guardian consent, duplicates, malformed lines of
// every kind, late and far-future events, odd dimension values, and
// timestamp and field-order variants. Events are spread evenly over the
// days, each partition mostly in order with a few minutes of disorder.
// Each line is built with strconv.Append*, never encoding/json.
//
// Guarantees:
//   - the same Config writes the same bytes (same Go version and
//     architecture), however many CPUs render the lines;
//   - a workspace's events all go to one partition, keyed by its id, and
//     every settings line comes before the first event line;
//   - Stats counts every hazard and says what deid must make of every line
//     under the contract's defaults (Stats.Expected, per partition), so tests
//     can hold deid's accounting against it; Stats.Workspaces names the
//     opted-out, deleted and unknown workspaces for privacy tests;
//   - personal data in the sample is fictional: example.* e-mail domains,
//     555-01xx phone numbers, documentation IP ranges.
//
// Writer abstracts the destination: WriteFiles writes NDJSON files; a
// Kafka producer can implement Writer to fill topics.
package gen
