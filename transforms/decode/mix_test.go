package decode

import (
	"slices"
	"sync"
	"testing"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/pipeline"
)

// genMix is one partition of the generator's default mix, hazards and all
// (the benchmark's input), as lines.
var genMix = sync.OnceValue(func() [][]byte {
	var w mixLines
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions = 20_000, 1
	if _, err := gen.Generate(cfg, &w); err != nil {
		panic(err)
	}
	return w.lines
})

type mixLines struct{ lines [][]byte }

func (w *mixLines) Event(_ int, _, line []byte) error {
	w.lines = append(w.lines, slices.Clone(line))
	return nil
}
func (w *mixLines) Setting(_, _ []byte) error { return nil }

// BenchmarkDecodeMix decodes the generator's mix on each path: one op is
// one line.
func BenchmarkDecodeMix(b *testing.B) {
	lines := genMix()
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	for _, p := range decoderPaths() {
		b.Run(p.name, func(b *testing.B) {
			d := newDecoder(DefaultConfig())
			d.path = p.path
			var ev pipeline.Event
			b.SetBytes(size / int64(len(lines)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d.Decode(lines[i%len(lines)], &ev)
			}
		})
	}
}

// decodeLines decodes every line once with d. It is a function of its own
// so that an instruction counter can be limited to it, e.g.
//
//	valgrind --tool=callgrind --toggle-collect='*decode.decodeLines' \
//	  ./decode.test -test.run '^$' -test.bench 'DecodeMixPasses/exact$' -test.benchtime 3x
//
//go:noinline
func decodeLines(d *Decoder, lines [][]byte, ev *pipeline.Event) (malformed int) {
	for _, l := range lines {
		if d.Decode(l, ev) != nil {
			malformed++
		}
	}
	return malformed
}

// BenchmarkDecodeMixPasses decodes the whole mix once per op, on each
// path: the unit for counting instructions per line.
func BenchmarkDecodeMixPasses(b *testing.B) {
	lines := genMix()
	for _, p := range decoderPaths() {
		b.Run(p.name, func(b *testing.B) {
			d := newDecoder(DefaultConfig())
			d.path = p.path
			var ev pipeline.Event
			for b.Loop() {
				decodeLines(d, lines, &ev)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
		})
	}
}
