package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/mya/deid/internal/s3test"
)

// benchStores opens each implementation for a benchmark.
func benchStores(b *testing.B) map[string]Store {
	return map[string]Store{"local": openLocal(b), "s3": openS3(b, s3test.Require(b), nil)}
}

func BenchmarkPut(b *testing.B) {
	for name, s := range benchStores(b) {
		for _, size := range []int{64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				body := bytes.NewReader(random(b, size))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					if err := s.Put(context.Background(), fmt.Sprintf("bench/put-%d-%d", size, i), body, PutOptions{IfNotExists: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	for name, s := range benchStores(b) {
		for _, size := range []int{64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				ctx := context.Background()
				key := fmt.Sprintf("bench/get-%d", size)
				if err := s.Put(ctx, key, bytes.NewReader(random(b, size)), PutOptions{}); err != nil {
					b.Fatal(err)
				}
				buf := bytes.NewBuffer(make([]byte, 0, size))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					rc, err := s.Get(ctx, key)
					if err != nil {
						b.Fatal(err)
					}
					buf.Reset()
					_, err = io.Copy(buf, rc)
					rc.Close()
					if err != nil || buf.Len() != size {
						b.Fatalf("read %d bytes: %v", buf.Len(), err)
					}
				}
			})
		}
	}
}
