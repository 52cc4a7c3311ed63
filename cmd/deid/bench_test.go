package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mya/deid/internal/gen"
)

// benchInput writes a seeded generator sample of events over partitions
// into a directory shared by the benchmark's runs and returns it.
func benchInput(b *testing.B, events, partitions int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions = events, partitions
	if _, err := gen.WriteFiles(dir, cfg); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRunFile measures a whole file-mode run, in-process, as `deid run`
// does it: source, decode, gates, aggregation, publisher, privacy gate,
// Parquet, exclusion log, dead letters. It reports events/s and the bytes
// of input per second; allocs/op divided by the events is the allocation
// per event. Profile it with -cpuprofile or -trace.
func BenchmarkRunFile(b *testing.B) {
	for _, c := range []struct{ events, partitions int }{{200_000, 2}, {200_000, 1}} {
		b.Run(fmt.Sprintf("events=%d/partitions=%d", c.events, c.partitions), func(b *testing.B) {
			in := benchInput(b, c.events, c.partitions)
			var size int64
			entries, _ := os.ReadDir(in)
			for _, e := range entries {
				if fi, err := e.Info(); err == nil && e.Name() != "settings.ndjson" {
					size += fi.Size()
				}
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), fmt.Sprint("out", i))
				var stdout, stderr bytes.Buffer
				if code := run([]string{"run", "--input", in, "--settings", filepath.Join(in, "settings.ndjson"),
					"--out", out, "--log-level", "error"}, &stdout, &stderr); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
			}
			b.ReportMetric(float64(c.events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(c.events)/float64(b.N), "ns/event")
		})
	}
}
