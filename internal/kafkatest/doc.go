// Package kafkatest is deid's Kafka test harness: an in-process Kafka
// cluster (kfake, from franz-go) for fast tests, the real Apache Kafka
// broker that scripts/kafka-local.sh runs for system tests, and helpers to
// create topics, produce records and read them back.
//
// The same test body runs on both through Each (as goka's system tests and
// bento's integration tests do): the fake cluster always, the real one when
// DEID_KAFKA_BROKERS names it. When it does not, the real subtest is
// skipped, unless DEID_REQUIRE_KAFKA is set, which `make test` does after
// starting the broker: then it fails, so CI never skips it silently.
//
// The helpers talk to Kafka through franz-go, a client independent of the
// kafka-go code under test, so a protocol mistake in deid cannot hide behind
// the same mistake in its checks. Every resource is released with
// t.Cleanup; tests only ever talk to 127.0.0.1 (Real refuses other hosts).
//
// Fault injection: FailFetches and FailCommits install kfake faults; Stop
// and Start take the broker away and bring it back on the same ports with
// the same state, as a broker restart would; Kfake exposes kfake's control
// hooks for anything else. Those need a fake cluster, except Stop and
// Start, which also work on a Dedicated one: a real broker of the test's
// own, started by scripts/kafka-local.sh on a state directory of its own
// (the shared real broker is never restarted).
package kafkatest
