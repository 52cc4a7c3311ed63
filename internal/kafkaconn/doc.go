// Package kafkaconn is the connection to Kafka that every Kafka client of
// deid shares — the consumer group and the settings follower
// (sources/kafka), the dead-letter sink (sinks/kafkadlq), the anchor topic
// (sinks/anchors) and the sample producer: the brokers, the client id, TLS,
// SASL, the dial and request timeouts, and the one retry rhythm
// (retry_backoff, retry_backoff_max, retry_budget). Its Config is embedded
// inline in the `kafka:` section, so its keys sit directly under `kafka.`.
// It lives apart from the source so that sinks need not import a source:
// data flows from sources through the pipeline to sinks, and imports follow.
//
// Guarantees:
//   - Validate reports every problem at once, each prefixed with its YAML
//     path (kafka.brokers, kafka.tls, kafka.sasl.mechanism, …), and reads
//     no file;
//   - Connect and Transport read the TLS files and the SASL password, and
//     their errors name the key to fix; the password is read from an
//     environment variable or a file, never from the configuration, and no
//     error or log line ever includes it;
//   - broker connections are plain TCP (dual stack, keepalive) read through
//     a large buffer (BufferedDial); kafka-go adds TLS and SASL on top;
//   - Retry and Retrier retry only what Transient calls transient (a broker
//     error Kafka marks retriable, a refused, reset or cut connection), back
//     off exponentially from retry_backoff to retry_backoff_max, and give up
//     once one run of failures has lasted retry_budget, returning the last
//     failure and naming kafka.retry_budget; a done context ends a wait at
//     once.
package kafkaconn
