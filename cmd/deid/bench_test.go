package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/exclusions"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sources/file"
	"github.com/mya/deid/transforms/agegate"
	"github.com/mya/deid/transforms/aggregate"
	"github.com/mya/deid/transforms/consent"
	"github.com/mya/deid/transforms/decode"
	"github.com/mya/deid/transforms/privacy"
)

// The benchmarks of this file measure deid stage by stage on one realistic
// input: the generator's default mix (every hazard, ~490-byte events), so
// that the stages' costs add up to something comparable with the
// end-to-end run. Each reports ns/event and allocs/op per event (b.N counts
// events, or rows for the Parquet stage, or entries for the exclusion log).
// They measure; they never pass or fail on time.

// benchMix is the generator's default mix, in memory, with its settings.
type benchMix struct {
	lines    [][]byte // one partition's event lines, in order
	settings []byte   // the settings NDJSON
	bytes    int64
}

type mixWriter struct{ m *benchMix }

func (w mixWriter) Event(p int, key, line []byte) error {
	if p == 0 {
		w.m.lines = append(w.m.lines, slices.Clone(line))
		w.m.bytes += int64(len(line)) + 1
	}
	return nil
}

func (w mixWriter) Setting(key, line []byte) error {
	w.m.settings = append(append(w.m.settings, line...), '\n')
	return nil
}

// mix generates the input once: 100 000 events in one partition, or, with
// DEID_BENCH_EVENTS and DEID_BENCH_PARTITIONS, partition 0 of another
// input (2000000 and 2 are the end-to-end benchmark's input, whose windows
// hold ~20 times the events per contribution of the small one).
var mix = sync.OnceValue(func() *benchMix {
	m := &benchMix{}
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions = envInt("DEID_BENCH_EVENTS", 100_000), envInt("DEID_BENCH_PARTITIONS", 1)
	if _, err := gen.Generate(cfg, mixWriter{m}); err != nil {
		panic(err)
	}
	return m
})

// envInt reads a positive integer from the environment, or returns def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// stageSetup is what the stage benchmarks share: the mix decoded, the
// consent store, the datasets and the events that contribute to them.
type stageSetup struct {
	mix     *benchMix
	events  []pipeline.Event // well-formed events, aliasing mix.lines
	cons    *consent.Store
	specs   []*pipeline.DatasetSpec
	aggs    []*aggregate.Aggregator
	kindAgg map[pipeline.EventKind]int
	// passing are the events that pass every gate, in order.
	passing []*pipeline.Event
	// excluded are exclusion entries as the gates make them.
	excluded []pipeline.Exclusion
}

var stages = sync.OnceValues(func() (*stageSetup, error) {
	s := &stageSetup{mix: mix(), kindAgg: map[pipeline.EventKind]int{}}
	key, err := pipeline.NewPseudonymKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		return nil, err
	}
	dec, err := decode.New(decode.DefaultConfig())
	if err != nil {
		return nil, err
	}
	// Far-future events are malformed (max_future_skew) and never reach
	// the gates.
	horizon := time.Now().Add(15 * time.Minute).UnixMicro()
	for _, line := range s.mix.lines {
		var ev pipeline.Event
		if dec.Decode(line, &ev) == nil && ev.OccurredAt <= horizon {
			s.events = append(s.events, ev)
		}
	}
	if s.cons, err = consent.New(consent.DefaultConfig(), key); err != nil {
		return nil, err
	}
	if err := s.cons.Load(bytes.NewReader(s.mix.settings), "settings"); err != nil {
		return nil, err
	}
	if s.specs, err = aggregate.Build(aggregate.DefaultConfig(), nil); err != nil {
		return nil, err
	}
	for i, spec := range s.specs {
		a, err := aggregate.New(spec)
		if err != nil {
			return nil, err
		}
		s.aggs = append(s.aggs, a)
		for _, k := range spec.Kinds {
			s.kindAgg[k] = i
		}
	}
	seen := map[[16]byte]bool{}
	for i := range s.events {
		ev := &s.events[i]
		sum := sha256.Sum256(ev.EventID)
		reason := pipeline.ReasonNone
		_, aggregated := s.kindAgg[ev.Kind]
		switch {
		case seen[[16]byte(sum[:16])]:
			reason = pipeline.ReasonDuplicate
		case ev.Kind == pipeline.KindMessage:
			reason = pipeline.ReasonMessageContent
		case !aggregated:
			reason = pipeline.ReasonUnsupportedEventType
		default:
			if reason = s.cons.Check(ev); reason == pipeline.ReasonNone {
				reason = agegate.Gate{}.Check(ev)
			}
		}
		seen[[16]byte(sum[:16])] = true
		if reason == pipeline.ReasonNone {
			s.passing = append(s.passing, ev)
			continue
		}
		s.excluded = append(s.excluded, pipeline.Exclusion{EventID: string(ev.EventID), EventType: string(ev.EventType),
			WorkspaceID: string(ev.WorkspaceID), Pos: pipeline.Position{Source: "events-00.ndjson", Offset: int64(i + 1)},
			OccurredAt: ev.OccurredAt, Reason: reason, PolicyVersion: "bench", DecidedAt: 1})
	}
	return s, nil
})

func setup(b *testing.B) *stageSetup {
	b.Helper()
	s, err := stages()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// perEvent reports ns/event over n units per iteration.
func perEvent(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
}

// BenchmarkStageRead is the file source alone: lines off the page cache.
func BenchmarkStageRead(b *testing.B) {
	m := mix()
	path := filepath.Join(b.TempDir(), "events-00.ndjson")
	if err := os.WriteFile(path, append(bytes.Join(m.lines, []byte("\n")), '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(m.bytes)
	b.ReportAllocs()
	for b.Loop() {
		r, err := file.OpenFile(path, file.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(context.Background()); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
		}
		r.Close()
	}
	perEvent(b, len(m.lines))
}

// BenchmarkStageDecode decodes the mix, hazards and all: one op is one line.
func BenchmarkStageDecode(b *testing.B) {
	m := mix()
	dec, err := decode.New(decode.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var ev pipeline.Event
	b.SetBytes(m.bytes / int64(len(m.lines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dec.Decode(m.lines[i%len(m.lines)], &ev)
	}
}

// BenchmarkStageGates is the record gates after decoding, as the worker
// runs them: the dedup key (SHA-256 of the event id) looked up and added
// in a set, then event type, consent and age. One op is one well-formed
// event; the set starts empty every pass over the mix, as a window's does.
func BenchmarkStageGates(b *testing.B) {
	s := setup(b)
	age := agegate.Gate{}
	seen := map[[16]byte]struct{}{}
	var passed int
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % len(s.events)
		if j == 0 {
			clear(seen)
		}
		ev := &s.events[j]
		sum := sha256.Sum256(ev.EventID)
		k := [16]byte(sum[:16])
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if _, ok := s.kindAgg[ev.Kind]; !ok {
			continue
		}
		if s.cons.Check(ev) == pipeline.ReasonNone && age.Check(ev) == pipeline.ReasonNone {
			passed++
		}
	}
	b.ReportMetric(float64(passed)/float64(b.N), "passed/event")
}

// BenchmarkStageAggregate adds the events that pass the gates into fresh
// partials, one per dataset and day, as a worker does: pseudonymizing the
// workspace, then Add, and at the end of the input sealing each partial
// (building its Cells), as a worker does at handover. One op is one
// contributing event; with b.N a multiple of the metric "passing" (the
// events of one pass), every pass is sealed.
func BenchmarkStageAggregate(b *testing.B) {
	s := setup(b)
	pz := pipeline.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	type pk struct {
		agg int
		day int64
	}
	partials := map[pk]*pipeline.Partial{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := i % len(s.passing)
		ev := s.passing[j]
		a := s.kindAgg[ev.Kind]
		day := ev.OccurredAt - ev.OccurredAt%86_400_000_000
		p := partials[pk{a, day}]
		if p == nil {
			p = pipeline.NewPartial(s.specs[a].Name, pipeline.Window{Start: day, End: day + 86_400_000_000})
			partials[pk{a, day}] = p
		}
		s.aggs[a].Add(p, ev, pz.Of(ev.WorkspaceID), pz)
		p.Events++
		if j == len(s.passing)-1 {
			for _, p := range partials {
				p.Seal()
			}
			clear(partials)
		}
	}
	b.ReportMetric(float64(len(s.passing)), "passing")
}

// windowPartials aggregates every passing event into partials by dataset
// and day.
func windowPartials(s *stageSetup) []*pipeline.Partial {
	pz := pipeline.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	byKey := map[[2]int64]*pipeline.Partial{}
	var out []*pipeline.Partial
	for _, ev := range s.passing {
		a := s.kindAgg[ev.Kind]
		day := ev.OccurredAt - ev.OccurredAt%86_400_000_000
		p := byKey[[2]int64{int64(a), day}]
		if p == nil {
			p = pipeline.NewPartial(s.specs[a].Name, pipeline.Window{Start: day, End: day + 86_400_000_000})
			byKey[[2]int64{int64(a), day}] = p
			out = append(out, p)
		}
		s.aggs[a].Add(p, ev, pz.Of(ev.WorkspaceID), pz)
		p.Events++
	}
	for _, p := range out {
		p.Seal()
	}
	return out
}

func specOf(s *stageSetup, p *pipeline.Partial) *pipeline.DatasetSpec {
	for _, spec := range s.specs {
		if spec.Name == p.Dataset {
			return spec
		}
	}
	return nil
}

// BenchmarkStagePrivacy runs the privacy gate over every window of the
// mix (k, dominance, p%, the generalization ladder). One op is all the
// windows; ns/event is per contributed event.
func BenchmarkStagePrivacy(b *testing.B) {
	s := setup(b)
	partials := windowPartials(s)
	g := privacy.New()
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range partials {
			if _, err := g.Apply(specOf(s, p), p); err != nil {
				b.Fatal(err)
			}
		}
	}
	perEvent(b, len(s.passing))
	b.ReportMetric(float64(len(partials)), "windows")
}

// BenchmarkStageParquet writes every window's published rows (the privacy
// gate's output) as the dataset sink does: Parquet, manifest, fsync. One op
// is all the windows; ns/event is per contributed event.
func BenchmarkStageParquet(b *testing.B) {
	s := setup(b)
	var outs []*pipeline.WindowOutput
	rows := 0
	for _, p := range windowPartials(s) {
		spec := specOf(s, p)
		res, err := privacy.New().Apply(spec, p)
		if err != nil {
			b.Fatal(err)
		}
		rows += len(res.Rows)
		outs = append(outs, &pipeline.WindowOutput{Spec: spec, Window: p.Window, Rows: res.Rows,
			Acct:       pipeline.WindowAccounting{Contributed: p.Events, Published: res.PublishedEvents},
			ChainHeads: map[string]string{}, PolicyVersion: "bench", PipelineVersion: "bench"})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cfg := parquet.DefaultConfig()
		cfg.Dir = filepath.Join(b.TempDir(), fmt.Sprint(i))
		sink, err := parquet.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for _, out := range outs {
			if err := sink.Commit(context.Background(), out); err != nil {
				b.Fatal(err)
			}
		}
	}
	perEvent(b, len(s.passing))
	b.ReportMetric(float64(rows), "rows")
}

// BenchmarkStageExclusions appends the mix's exclusion entries to a chain
// and commits them as one segment (Parquet, hash chain, fsync). One op is
// all the entries; ns/event is per excluded event.
func BenchmarkStageExclusions(b *testing.B) {
	s := setup(b)
	cfg := exclusions.DefaultConfig()
	cfg.Dir = b.TempDir()
	log, err := exclusions.New(cfg, exclusions.WithDatasets(s.specs...))
	if err != nil {
		b.Fatal(err)
	}
	chain, err := log.Chain("events-00.ndjson[0]")
	if err != nil {
		b.Fatal(err)
	}
	acct := &pipeline.PartitionAccounting{Partition: "events-00.ndjson[0]"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range s.excluded {
			if err := chain.Append(&s.excluded[j]); err != nil {
				b.Fatal(err)
			}
		}
		acct.Read = int64(i)
		if _, err := chain.Commit(context.Background(), acct); err != nil {
			b.Fatal(err)
		}
	}
	perEvent(b, len(s.excluded))
	b.ReportMetric(float64(len(s.excluded)), "entries")
}

// benchInput writes a seeded generator sample of events over partitions
// into a directory shared by the benchmark's runs and returns it.
func benchInput(b *testing.B, events, partitions int) (string, int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "in")
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions = events, partitions
	st, err := gen.WriteFiles(dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return dir, st.Bytes + st.Events
}

// BenchmarkRunFile measures a whole file-mode run in-process, as `deid run`
// does it: source, decode, gates, aggregation, publisher, privacy gate,
// Parquet, exclusion log, dead letters. One op is one run; ns/event and
// allocs/op divided by the events are per event. Profile it with
// -cpuprofile or -trace; `make bench` runs the binary on a larger input.
func BenchmarkRunFile(b *testing.B) {
	for _, c := range []struct{ events, partitions int }{{200_000, 1}, {200_000, 2}} {
		b.Run(fmt.Sprintf("events=%d/partitions=%d", c.events, c.partitions), func(b *testing.B) {
			in, size := benchInput(b, c.events, c.partitions)
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(b.TempDir(), fmt.Sprint("out", i))
				var stdout, stderr bytes.Buffer
				if code := run([]string{"run", "--input", in, "--settings", filepath.Join(in, "settings.ndjson"),
					"--out", out, "--log-level", "error"}, &stdout, &stderr); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
			}
			perEvent(b, c.events)
			b.ReportMetric(float64(c.events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkWindowState measures the memory an open window holds in a
// worker, apart from the dedup set (pipeline's BenchmarkDedup measures
// that per key): the partials of the mix's days, by dataset, cell and
// workspace contribution, with their entity sets. It reports bytes per
// contribution, per cell and per contributing event, from the live heap
// after a collection.
func BenchmarkWindowState(b *testing.B) {
	s := setup(b)
	var partials []*pipeline.Partial
	var before, after runtime.MemStats
	for b.Loop() {
		partials = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		partials = windowPartials(s)
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	var cells, contribs int
	for _, p := range partials {
		cells += len(p.Cells)
		for _, byWS := range p.Cells {
			contribs += len(byWS)
		}
	}
	live := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(live/float64(contribs), "B/contribution")
	b.ReportMetric(live/float64(cells), "B/cell")
	b.ReportMetric(live/float64(len(s.passing)), "B/event")
	b.ReportMetric(float64(contribs), "contributions")
	b.ReportMetric(float64(cells), "cells")
	runtime.KeepAlive(partials)
}
