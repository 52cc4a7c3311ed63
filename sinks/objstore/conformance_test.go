package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mya/deid/internal/s3test"
)

// stores opens each implementation for a test, fresh for each case: a
// directory, and a prefix of a fresh bucket on a real S3 server (one server
// for all the cases).
func stores() map[string]func(t *testing.T) func(t *testing.T) Store {
	return map[string]func(t *testing.T) func(t *testing.T) Store{
		"local": func(*testing.T) func(t *testing.T) Store {
			return func(t *testing.T) Store { return openLocal(t) }
		},
		"s3": func(t *testing.T) func(t *testing.T) Store {
			srv := s3test.Require(t)
			return func(t *testing.T) Store { return openS3(t, srv, nil) }
		},
	}
}

func openLocal(t testing.TB) *Local {
	t.Helper()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openS3 opens a store under a prefix of a fresh bucket of srv, with the
// credentials in the environment (the AWS chain) and cfg changed by mod.
func openS3(t testing.TB, srv *s3test.Server, mod func(*Config)) *S3 {
	t.Helper()
	srv.Setenv(t)
	cfg := DefaultConfig()
	cfg.S3.Endpoint = srv.Endpoint
	cfg.S3.ForcePathStyle = true
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewS3("s3://"+srv.Bucket(t)+"/out/run-1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t testing.TB, s Store, key, content string) {
	t.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(content), PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t testing.TB, s Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return string(b)
}

func keys(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	infos, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	var ks []string
	for _, i := range infos {
		ks = append(ks, i.Key)
	}
	return ks
}

// conformance is what every Store does alike.
var conformance = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"an object put is read back whole, and stat tells its size", func(t *testing.T, s Store) {
		put(t, s, "ds/window=1/part-0.parquet", "hello parquet")
		if got := get(t, s, "ds/window=1/part-0.parquet"); got != "hello parquet" {
			t.Errorf("get = %q", got)
		}
		info, err := s.Stat(context.Background(), "ds/window=1/part-0.parquet")
		if err != nil || info.Size != 13 || info.Key != "ds/window=1/part-0.parquet" || info.ModTime.IsZero() {
			t.Errorf("stat = %+v, %v", info, err)
		}
	}},
	{"an empty object is an object", func(t *testing.T, s Store) {
		put(t, s, "empty", "")
		if got := get(t, s, "empty"); got != "" {
			t.Errorf("get = %q", got)
		}
		if ok, err := Exists(context.Background(), s, "empty"); !ok || err != nil {
			t.Errorf("exists = %v, %v", ok, err)
		}
	}},
	{"a missing object is ErrNotFound for get and stat, and false for exists", func(t *testing.T, s Store) {
		ctx := context.Background()
		put(t, s, "a/b", "x")
		for _, k := range []string{"nothing", "a/c", "a"} {
			if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("get %s: %v, want ErrNotFound", k, err)
			}
			if _, err := s.Stat(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("stat %s: %v, want ErrNotFound", k, err)
			}
			if ok, err := Exists(ctx, s, k); ok || err != nil {
				t.Errorf("exists %s = %v, %v", k, ok, err)
			}
		}
	}},
	{"a plain put replaces the object", func(t *testing.T, s Store) {
		put(t, s, "k", "first")
		put(t, s, "k", "second")
		if got := get(t, s, "k"); got != "second" {
			t.Errorf("get = %q", got)
		}
	}},
	{"a conditional create writes a new object and refuses an existing one, leaving it as it was", func(t *testing.T, s Store) {
		ctx := context.Background()
		if err := s.Put(ctx, "w/_manifest.json", strings.NewReader("mine"), PutOptions{IfNotExists: true}); err != nil {
			t.Fatalf("first conditional create: %v", err)
		}
		err := s.Put(ctx, "w/_manifest.json", strings.NewReader("theirs"), PutOptions{IfNotExists: true})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second conditional create: %v, want ErrExists", err)
		}
		if !strings.Contains(err.Error(), "w/_manifest.json") {
			t.Errorf("the error does not name the object: %v", err)
		}
		if got := get(t, s, "w/_manifest.json"); got != "mine" {
			t.Errorf("get = %q, want the first writer's", got)
		}
	}},
	{"of 16 concurrent conditional writers to one key exactly one wins and the others get ErrExists", func(t *testing.T, s Store) {
		const writers = 16
		var wg sync.WaitGroup
		errs := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = s.Put(context.Background(), "race/_manifest.json", strings.NewReader(fmt.Sprintf("writer %02d", i)), PutOptions{IfNotExists: true})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Errorf("writers %d and %d both won", winner, i)
			case !errors.Is(err, ErrExists):
				t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no writer won")
		}
		if got, want := get(t, s, "race/_manifest.json"), fmt.Sprintf("writer %02d", winner); got != want {
			t.Errorf("the object holds %q, not the winner's %q", got, want)
		}
	}},
	{"list returns the objects under a prefix, sorted, by string prefix", func(t *testing.T, s Store) {
		for _, k := range []string{"ds/b/2", "ds/a/1", "ds/a-x", "ds/ab", "other/z", "dsx"} {
			put(t, s, k, k)
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", []string{"ds/a-x", "ds/a/1", "ds/ab", "ds/b/2", "dsx", "other/z"}},
			{"ds/", []string{"ds/a-x", "ds/a/1", "ds/ab", "ds/b/2"}},
			{"ds/a", []string{"ds/a-x", "ds/a/1", "ds/ab"}},
			{"ds/a/", []string{"ds/a/1"}},
			{"ds", []string{"ds/a-x", "ds/a/1", "ds/ab", "ds/b/2", "dsx"}},
			{"none/", nil},
		} {
			if diff := cmp.Diff(tc.want, keys(t, s, tc.prefix)); diff != "" {
				t.Errorf("list %q (-want +got):\n%s", tc.prefix, diff)
			}
		}
		infos, err := s.List(context.Background(), "ds/a/")
		if err != nil || len(infos) != 1 || infos[0].Size != int64(len("ds/a/1")) {
			t.Errorf("list infos = %+v, %v", infos, err)
		}
	}},
	{"delete removes an object, and deleting a missing one is not an error", func(t *testing.T, s Store) {
		ctx := context.Background()
		put(t, s, "d/x", "x")
		put(t, s, "d/y", "y")
		if err := s.Delete(ctx, "d/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "d/x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("stat after delete: %v", err)
		}
		if err := s.Delete(ctx, "d/x"); err != nil {
			t.Errorf("second delete: %v", err)
		}
		if diff := cmp.Diff([]string{"d/y"}, keys(t, s, "d/")); diff != "" {
			t.Errorf("list after delete (-want +got):\n%s", diff)
		}
	}},
	{"a deleted object can be created again with a conditional create", func(t *testing.T, s Store) {
		ctx := context.Background()
		put(t, s, "c", "old")
		if err := s.Delete(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "c", strings.NewReader("new"), PutOptions{IfNotExists: true}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "c"); got != "new" {
			t.Errorf("get = %q", got)
		}
	}},
	{"invalid keys are refused before anything is done", func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, k := range []string{"", "/abs", "trail/", "a//b", "a/../b", "./a", "a\\b", "a\x00b", "d/.part-1.tmp", "\xff"} {
			if err := s.Put(ctx, k, strings.NewReader("x"), PutOptions{}); err == nil || !strings.Contains(err.Error(), "invalid key") {
				t.Errorf("put %q: %v, want an invalid key", k, err)
			}
			if _, err := s.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("get %q: %v, want an invalid key", k, err)
			}
		}
		if got := keys(t, s, ""); len(got) != 0 {
			t.Errorf("the store holds %v", got)
		}
	}},
	{"a put reads the body from its start, even when it was read before", func(t *testing.T, s Store) {
		r := bytes.NewReader([]byte("whole content"))
		io.ReadAll(r)
		if err := s.Put(context.Background(), "rewound", r, PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, "rewound"); got != "whole content" {
			t.Errorf("get = %q", got)
		}
	}},
	{"a body that cannot be read leaves no object and nothing behind", func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, opts := range []PutOptions{{}, {IfNotExists: true}} {
			body := &failingReader{ReadSeeker: bytes.NewReader(make([]byte, 100<<10)), failAt: 10 << 10}
			err := s.Put(ctx, "broken/part-0.parquet", body, opts)
			if err == nil || !strings.Contains(err.Error(), "disk gone") {
				t.Errorf("put %+v: %v, want the body's error", opts, err)
			}
		}
		if _, err := s.Stat(ctx, "broken/part-0.parquet"); !errors.Is(err, ErrNotFound) {
			t.Errorf("stat: %v, want ErrNotFound", err)
		}
		if l, ok := s.(*Local); ok {
			if ents, _ := os.ReadDir(l.path("broken")); len(ents) != 0 {
				t.Errorf("left in the directory: %v", ents)
			}
		}
	}},
	{"the store honours conditional writes", func(t *testing.T, s Store) {
		if err := Probe(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s, ""); len(got) != 0 {
			t.Errorf("the probe left %v", got)
		}
		if l, ok := s.(*Local); ok {
			if ents, _ := os.ReadDir(l.dir); len(ents) != 0 {
				t.Errorf("the probe left %v in the directory", ents)
			}
		}
	}},
}

func TestConformance(t *testing.T) {
	for name, server := range stores() {
		t.Run(name, func(t *testing.T) {
			open := server(t)
			for _, tc := range conformance {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, open(t))
				})
			}
		})
	}
}
