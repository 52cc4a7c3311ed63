package pipeline

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// memStore is a StateStore in memory, for the pipeline's own tests; cmd/deid
// runs the same suite over a directory and over S3.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func newMemStore() *memStore { return &memStore{objects: map[string][]byte{}} }

func (m *memStore) Put(_ context.Context, key string, data []byte, createOnly bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; ok && createOnly {
		return ErrStateExists
	}
	m.objects[key] = slices.Clone(data)
	return nil
}

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[key]
	if !ok {
		return nil, ErrStateNotFound
	}
	return slices.Clone(b), nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m.objects)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

func (m *memStore) String() string { return "memory" }

func TestStateStoreCasesInMemory(t *testing.T) {
	for _, c := range StateStoreCases() {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Run(context.Background(), newMemStore()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
