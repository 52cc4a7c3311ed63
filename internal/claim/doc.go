// Package claim is a run's claim on its state directory and its output.
//
// A claim has two parts. A lock (Acquire): an exclusive flock(2) on a lock
// file in the directory, which records who holds it (pid, host, start time),
// so that a second process is refused before it touches anything and is told
// who holds the directory. The kernel releases the lock when the holder exits
// however it exits, so a crashed run never blocks the next one. And a binding
// (Binding): the keyed fingerprint of the pseudonym key, the policy version
// and the policy it hashes, written once into the directory, so that a run
// under another key or another policy refuses to resume from the state or
// to add windows to the output, and says what differs and how to start over.
//
// A root on object storage (an s3:// out or state_dir) has no flock: its lock
// is a lease (AcquireLease), lock objects created by generation with a
// conditional create, renewed by a heartbeat and taken over when stale, and
// its binding is created with a conditional create too (CreateObject), so
// that two runs binding a new root at once cannot both write one.
//
// The binding never holds the key: its fingerprint is HMAC-SHA-256 keyed with
// it over a fixed label, which tells two keys apart and reveals nothing else.
package claim
