package main

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/pipeline"
)

// stateStores opens each store a state_dir can name, fresh for each call:
// a directory, and a prefix of a fresh bucket on a real S3 server.
func stateStores() map[string]func(t *testing.T) pipeline.StateStore {
	return map[string]func(t *testing.T) pipeline.StateStore{
		"local": func(t *testing.T) pipeline.StateStore {
			cfg := defaultConfig()
			cfg.StateDir = t.TempDir()
			s, err := openStateObjects(context.Background(), &cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			return stateStore{s}
		},
		"s3": func(t *testing.T) pipeline.StateStore {
			srv := s3test.Require(t)
			return openS3State(t, srv, "s3://"+srv.Bucket(t)+"/state/run-1")
		},
	}
}

// openS3State opens the state store url names on srv, as a run does.
func openS3State(t testing.TB, srv *s3test.Server, url string) pipeline.StateStore {
	t.Helper()
	srv.Setenv(t)
	cfg := defaultConfig()
	cfg.StateDir = url
	cfg.Storage.S3.Endpoint, cfg.Storage.S3.ForcePathStyle = srv.Endpoint, true
	s, err := openStateObjects(context.Background(), &cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return stateStore{s}
}

// TestStateStores runs the checkpoint store's conformance suite over each
// store a state_dir can name: checkpoints and their dedup keys round trip,
// an interrupted checkpoint resumes from the last complete one, and the
// rest of pipeline.StateStoreCases.
func TestStateStores(t *testing.T) {
	for name, open := range stateStores() {
		t.Run(name, func(t *testing.T) {
			for _, c := range pipeline.StateStoreCases() {
				t.Run(c.Name, func(t *testing.T) {
					if err := c.Run(context.Background(), open(t)); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}
