package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// stateStore adapts an object store (a directory or s3://bucket/prefix) to
// the pipeline's StateStore: the checkpoints' storage.
type stateStore struct {
	s objstore.Store
}

// openStateObjects opens the store state_dir names. An s3:// store is
// first checked to honour conditional writes, which its lease, its binding
// and its checkpoints (never written twice) rely on. Each retry of a
// transient failure is logged, so that an outage of the store shows in the
// log while the run waits it out.
func openStateObjects(ctx context.Context, cfg *Config, log *zap.Logger) (objstore.Store, error) {
	s, err := objstore.Open(cfg.StateDir, cfg.Storage, objstore.OnRetry(func(op string, err error) {
		log.Warn("state_dir: retrying a failed request within storage.s3.retry_budget", zap.String("op", op), zap.Error(err))
	}))
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if isURL(cfg.StateDir) {
		if err := objstore.Probe(ctx, s); err != nil {
			return nil, fmt.Errorf("state_dir: %w", err)
		}
	}
	return s, nil
}

func (a stateStore) Put(ctx context.Context, key string, data []byte, createOnly bool) error {
	err := a.s.Put(ctx, key, bytes.NewReader(data), objstore.PutOptions{IfNotExists: createOnly})
	if errors.Is(err, objstore.ErrExists) {
		return fmt.Errorf("%w: %w", pipeline.ErrStateExists, err)
	}
	return err
}

func (a stateStore) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := a.s.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrStateNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", a.s, key, err)
	}
	return b, nil
}

func (a stateStore) List(ctx context.Context, prefix string) ([]string, error) {
	infos, err := a.s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(infos))
	for i, in := range infos {
		keys[i] = in.Key
	}
	return keys, nil
}

func (a stateStore) Delete(ctx context.Context, key string) error { return a.s.Delete(ctx, key) }

func (a stateStore) String() string { return a.s.String() }
