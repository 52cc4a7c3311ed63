// Package pipeline is deid's engine and its vocabulary.
//
// It defines what every other package speaks: positions of input records,
// typed events, dispositions and exclusion reasons, windows, the partial
// aggregates that partitions hand to the publisher, dataset declarations,
// published rows, and the accounting that ties them together. It also holds
// the engine itself: the per-partition worker (gates that depend on state,
// watermarks and windows), the publisher (consent re-check, privacy gate,
// commit) and Run, which wires a source to the sinks.
//
// Dependency direction: sources, transforms and sinks import pipeline;
// pipeline imports none of them. cmd/deid builds the concrete parts and hands
// them to Run through the small interfaces declared in stages.go.
//
// Guarantees the engine gives:
//   - every record read gets exactly one disposition: contributed, excluded
//     (with one Reason) or dead letter;
//   - a record is excluded by the first gate it fails, in the order of
//     contract §3.7: late, duplicate, event type, consent, age;
//   - a partition's exclusion-log segment is committed before the windows it
//     closed are handed to the publisher, so a published window's manifest
//     always names a chain head that covers every exclusion before it;
//   - a window is published once every partition has closed it, and never
//     again.
package pipeline
