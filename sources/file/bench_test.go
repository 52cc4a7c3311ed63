package file

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/mya/deid/internal/gen"
)

// BenchmarkRead reads one partition of the generated sample (50 000 events
// of about 600 bytes), plain and gzip: MB/s of uncompressed NDJSON, and
// allocations per pass (opening the file included; none per line).
func BenchmarkRead(b *testing.B) {
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cfg := gen.DefaultConfig()
			cfg.Events, cfg.Partitions, cfg.Gzip = 50_000, 1, gz
			st, err := gen.WriteFiles(dir, cfg)
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, gen.EventsFileName(0, gz))
			b.SetBytes(st.Bytes + st.Events) // newlines included
			b.ReportAllocs()
			var records int64
			for b.Loop() {
				r, err := OpenFile(path, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				for {
					batch, err := r.Next(context.Background())
					records += int64(len(batch))
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				r.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		})
	}
}
