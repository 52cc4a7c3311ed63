package gen

import (
	"syscall"
	"testing"
	"time"
)

// discard is a Writer that counts bytes and keeps nothing.
type discard struct{ n int64 }

func (d *discard) Event(_ int, _, line []byte) error { d.n += int64(len(line)) + 1; return nil }
func (d *discard) Setting(_, line []byte) error      { d.n += int64(len(line)) + 1; return nil }

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerate measures generation alone, without I/O, over the
// default sample (200 000 events): events/s and MB/s of NDJSON by the wall
// clock, and CPU-ns/event, which stays meaningful on a busy machine.
func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	b.ReportAllocs()
	var bytes int64
	cpu0 := cpuTime()
	for b.Loop() {
		d := &discard{}
		if _, err := Generate(cfg, d); err != nil {
			b.Fatal(err)
		}
		bytes = d.n
	}
	events := float64(cfg.Events) * float64(b.N)
	b.SetBytes(bytes)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/events, "cpu-ns/event")
}
