// Package partials is the sending side of the partials topic in a job of
// several instances (contract §13): after a worker has committed the
// checkpoint that covers a window's close, it sends one close record per
// dataset (pipeline.CloseRecord) here, and the publisher group reads them
// from the topic (sources/kafka's Feed).
//
// Guarantees: a record's key is its dataset, so one dataset's records go to
// one partition of the topic and keep the order they were sent in; Send
// returns nil only once every in-sync replica has acknowledged every record
// (acks=all). Transient failures (a broker restarting, a leader moving) are
// retried within kafka.retry_budget; after a failure that delivered some
// records and not others, every record of a dataset from its first
// undelivered one on is sent again, so the copies of a dataset's records
// read last are in order. Delivery is at least once: duplicates are
// harmless to the publisher.
//
// What it never does: create the topic (Check fails, naming the topic and
// how to create it, before any worker runs), or carry anything but the
// close record: partials themselves stay in the state store, and a close
// record holds their names, hashes, accounting and chain heads.
package partials
