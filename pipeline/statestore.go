package pipeline

import (
	"context"
	"errors"
)

// StateStore holds the pipeline's state — checkpoints, dedup key runs, the
// publish intent — as whole objects under slash-separated keys relative to
// its root (a local directory or an object-store prefix). cmd/deid adapts
// the object stores to it; the pipeline knows no storage of its own.
//
// An object is either absent or complete: Put makes the whole of data
// visible at once and durable before it returns (a local directory writes a
// temporary file, fsyncs it and renames it into place). All methods are
// safe for concurrent use, block until done and honour ctx.
type StateStore interface {
	// Put stores data under key, replacing any object there, unless
	// createOnly is set: then it fails with ErrStateExists, writing
	// nothing, when the key already holds an object.
	Put(ctx context.Context, key string, data []byte, createOnly bool) error
	// Get returns the object under key, or ErrStateNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes the object under key; a missing one is no error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages (a directory or a URL, never a
	// credential).
	String() string
}

// ErrStateNotFound is StateStore.Get's error for a key without an object.
var ErrStateNotFound = errors.New("state object not found")

// ErrStateExists is StateStore.Put's error for a create-only put of a key
// that holds an object.
var ErrStateExists = errors.New("state object already exists")
