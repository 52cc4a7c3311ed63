package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// group is a consumer group in memory: the committed offset and checkpoint
// name of each partition, and whether a member is fenced.
type group struct {
	mu        sync.Mutex
	committed map[PartitionID]Committed
}

// memGen is one generation of one instance: some partitions of a
// memSource, read to their end.
type memGen struct {
	g      *group
	src    memSource
	parts  []PartitionID
	id     int32
	fenced bool
	done   chan struct{}
}

func (m *memGen) Partitions() []PartitionID { return m.parts }
func (m *memGen) Done() <-chan struct{}     { return m.done }
func (m *memGen) ID() int32                 { return m.id }
func (m *memGen) Release()                  {}
func (m *memGen) Open(ctx context.Context, resume Resume) ([]PartitionReader, error) {
	sub := memSource{}
	for _, id := range m.parts {
		sub[id.Source] = m.src[id.Source]
	}
	return sub.Open(ctx, resume)
}
func (m *memGen) Committed(id PartitionID) string {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	return m.g.committed[id].Checkpoint
}
func (m *memGen) Fence(context.Context) error {
	if m.fenced {
		return fmt.Errorf("%w: illegal generation", ErrGenerationEnded)
	}
	return nil
}
func (m *memGen) Commit(_ context.Context, next map[PartitionID]Committed) error {
	if m.fenced {
		return fmt.Errorf("%w: illegal generation", ErrGenerationEnded)
	}
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	for id, c := range next {
		m.g.committed[id] = c
	}
	return nil
}

// memStream assigns its one generation once; asked for another, it stops
// the run (as an operator would stop an instance left with no partitions).
type memStream struct {
	gen  *memGen
	stop context.CancelFunc
}

func (s *memStream) Assign(ctx context.Context) (Generation, error) {
	if g := s.gen; g != nil {
		s.gen = nil
		return g, nil
	}
	s.stop()
	<-ctx.Done()
	return nil, ctx.Err()
}
func (s *memStream) Close() error { return nil }

// memTopic is the partials topic in memory, with one partition.
type memTopic struct {
	mu   sync.Mutex
	recs []CloseRecord
}

func (t *memTopic) Send(_ context.Context, recs []CloseRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		b, err := EncodeCloseRecord(&r)
		if err != nil {
			return err
		}
		back, err := DecodeCloseRecord(b)
		if err != nil {
			return err
		}
		t.recs = append(t.recs, *back)
	}
	return nil
}

func (t *memTopic) Assign(ctx context.Context) (FeedGeneration, error) {
	return &memFeedGen{t: t, done: make(chan struct{})}, nil
}
func (t *memTopic) Close() error { return nil }

type memFeedGen struct {
	t    *memTopic
	next int
	done chan struct{}
}

func (f *memFeedGen) Partitions() []int32                           { return []int32{0} }
func (f *memFeedGen) Done() <-chan struct{}                         { return f.done }
func (f *memFeedGen) Commit(context.Context, map[int32]int64) error { return nil }
func (f *memFeedGen) Next(ctx context.Context) (*CloseRecord, FeedPosition, error) {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	if f.next >= len(f.t.recs) {
		return nil, FeedPosition{}, io.EOF
	}
	r := f.t.recs[f.next]
	f.next++
	return &r, FeedPosition{Offset: int64(f.next - 1)}, nil
}

func noLease(context.Context) (func(context.Context) error, func(), error) {
	return func(context.Context) error { return nil }, func() {}, nil
}

// runInstance runs stage 1 of one instance over some partitions.
func runInstance(t *testing.T, src memSource, parts []string, g *group, gen int32, fenced bool, ck *Checkpoints, topic *memTopic, sinks *memSinks) (*Summary, error) {
	t.Helper()
	mg := &memGen{g: g, src: src, id: gen, fenced: fenced, done: make(chan struct{})}
	for _, p := range parts {
		mg.parts = append(mg.parts, PartitionID{Source: p})
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	st := Stages{Stream: &memStream{gen: mg, stop: stop}, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: &fakeConsent{},
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks, Checkpoints: ck, Closes: topic}
	now := func() time.Time { return t0.Add(30 * day) }
	return Run(ctx, DefaultConfig(), st, WithClock(now))
}

func jobSource() memSource {
	return memSource{
		"a": {ev("campaign.metrics", "a1", "w", t0.Add(time.Hour)), ev("campaign.metrics", "a2", "w", t0.Add(3*day))},
		"b": {ev("campaign.metrics", "b1", "v", t0.Add(2*time.Hour)), ev("campaign.metrics", "b2", "v", t0.Add(2*day))},
		"c": {ev("campaign.metrics", "c1", "u", t0.Add(3*time.Hour))},
	}
}

func published(outs []*WindowOutput) []string {
	var got []string
	for _, o := range outs {
		got = append(got, fmt.Sprintf("%s events=%d rows=%v parts=%d", formatWindow(o.Window), o.Acct.Contributed, o.Rows, len(o.Partitions)))
	}
	return got
}

// TestAJobOfSeveralInstancesPublishesWhatOneInstanceDoes runs stage 1 on
// two instances, then stage 2, and compares what it publishes with one
// instance's run of the same input.
func TestAJobOfSeveralInstancesPublishesWhatOneInstanceDoes(t *testing.T) {
	src := jobSource()
	want := published(runEngine(t, src, nil).sinks.outs)

	ck, err := NewCheckpoints(context.Background(), newMemStore())
	if err != nil {
		t.Fatal(err)
	}
	g := &group{committed: map[PartitionID]Committed{}}
	topic := &memTopic{}
	sinks := &memSinks{chains: map[string]*memChain{}}
	for _, inst := range [][]string{{"a", "c"}, {"b"}} {
		if _, err := runInstance(t, src, inst, g, 1, false, ck, topic, sinks); err != nil {
			t.Fatalf("stage 1 on %v: %v", inst, err)
		}
	}
	if len(sinks.outs) != 0 {
		t.Fatalf("stage 1 published %d windows; only stage 2 publishes", len(sinks.outs))
	}
	for id, c := range g.committed {
		if c.Checkpoint == "" || c.Next == 0 {
			t.Errorf("partition %s committed %+v: want its offset with its checkpoint's name", id, c)
		}
	}
	inputs := []PartitionID{{Source: "a"}, {Source: "b"}, {Source: "c"}}
	pst := PublishStages{Feed: topic, InputPartitions: func(context.Context) ([]PartitionID, error) { return inputs, nil },
		Lease: noLease, Consent: &fakeConsent{}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, Checkpoints: ck, Bounded: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Publish(ctx, DefaultConfig(), pst); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("stage 2: %v", err)
	}
	if diff := cmp.Diff(want, published(sinks.outs)); diff != "" {
		t.Errorf("stage 2 published otherwise than one instance (-one +job):\n%s", diff)
	}
	through, err := ck.JobDoneThrough(context.Background())
	if err != nil || through["a[0]"] != 3 || through["b[0]"] != 3 || through["c[0]"] != 2 {
		t.Errorf("job done mark = %v, %v; want every partition through its end", through, err)
	}
}

// TestAWindowWaitsForEveryPartitionOfTheTopics: a partition of the topics'
// metadata that has closed nothing holds every window back.
func TestAWindowWaitsForEveryPartitionOfTheTopics(t *testing.T) {
	src := jobSource()
	ck, _ := NewCheckpoints(context.Background(), newMemStore())
	g := &group{committed: map[PartitionID]Committed{}}
	topic := &memTopic{}
	sinks := &memSinks{chains: map[string]*memChain{}}
	if _, err := runInstance(t, src, []string{"a", "b"}, g, 1, false, ck, topic, sinks); err != nil {
		t.Fatal(err)
	}
	inputs := []PartitionID{{Source: "a"}, {Source: "b"}, {Source: "c"}}
	pst := PublishStages{Feed: topic, InputPartitions: func(context.Context) ([]PartitionID, error) { return inputs, nil },
		Lease: noLease, Consent: &fakeConsent{}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, Checkpoints: ck}
	if _, err := Publish(context.Background(), DefaultConfig(), pst); !errors.Is(err, io.EOF) {
		t.Fatalf("stage 2 = %v, want it to run out of close records", err)
	}
	if len(sinks.outs) != 0 {
		t.Errorf("published %v without partition c", published(sinks.outs))
	}
}

// TestAFencedInstanceWritesNoCheckpointAndCommitsNothing: a worker whose
// generation the group has left drops the partition.
func TestAFencedInstanceWritesNoCheckpointAndCommitsNothing(t *testing.T) {
	src := jobSource()
	store := newMemStore()
	ck, _ := NewCheckpoints(context.Background(), store)
	g := &group{committed: map[PartitionID]Committed{}}
	topic := &memTopic{}
	sinks := &memSinks{chains: map[string]*memChain{}}
	if _, err := runInstance(t, src, []string{"a"}, g, 1, true, ck, topic, sinks); err != nil {
		t.Fatalf("a fenced partition failed the run: %v", err)
	}
	if len(g.committed) != 0 || len(topic.recs) != 0 {
		t.Errorf("a fenced instance committed %v and sent %d close records", g.committed, len(topic.recs))
	}
	keys, _ := store.List(context.Background(), checkpointsDir)
	if len(keys) != 0 {
		t.Errorf("a fenced instance wrote %v", keys)
	}
}

// TestATakeoverResumesFromTheCommittedCheckpointNotTheNewest: a checkpoint
// written after the last commit (a fenced owner's) is not the state.
func TestATakeoverResumesFromTheCommittedCheckpointNotTheNewest(t *testing.T) {
	store := newMemStore()
	ck, _ := NewCheckpoints(context.Background(), store)
	id := PartitionID{Source: "a"}
	p := ck.partition(id)
	p.deferGC = true // an owner in a job keeps its committed checkpoint
	ctx := context.Background()
	_, first, err := p.save(ctx, &checkpoint{Partition: id, Next: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.save(ctx, &checkpoint{Partition: id, Next: 9}); err != nil {
		t.Fatal(err)
	}
	q := ck.partition(id)
	cp, ok, err := q.loadNamed(ctx, first, 3)
	if err != nil || !ok || cp.Next != 5 {
		t.Fatalf("loadNamed(%s) = %+v, %v, %v; want the committed checkpoint (next 5)", first, cp, ok, err)
	}
	if _, name, err := q.save(ctx, &checkpoint{Partition: id, Next: 7}); err != nil || lineageSeq(name) <= 3<<lineageSeqBits {
		t.Errorf("the next checkpoint of generation 3 is %s (%v); want a sequence above the generation's base", name, err)
	}
	if _, _, err := ck.partition(id).loadNamed(ctx, "checkpoints/a%5B0%5D/0000000000000042.ckpt", 4); err == nil {
		t.Error("a committed checkpoint missing from the store was not refused")
	}
}

// TestAPartialBlobIsItsContent: a blob is named by its SHA-256, so the same
// partial encodes to the same bytes in any process (gob would not: it
// numbers types as a process meets them), and a damaged blob is refused.
func TestAPartialBlobIsItsContent(t *testing.T) {
	pb := &partialBlob{Version: blobVersion, Partition: PartitionID{Source: "events", Partition: 3}, Window: Window{Start: 10, End: 20},
		Partial: partialSnap{Present: true, Dataset: "d", Events: 7, Cells: []cellSnap{
			{Key: CellKey{"instagram", "US"}, WS: []contribSnap{
				{WS: []byte("ws-a"), Events: 3, Sums: []int64{5, -2}, Sets: [][]byte{[]byte("c1c2"), nil}},
				{WS: []byte("ws-b"), Events: 4, Sums: []int64{1, 0}, Sets: [][]byte{nil, []byte("x")}, Overflow: true}}},
			{Key: CellKey{"tiktok"}}}}}
	b := encodeBlob(pb)
	back, err := decodeBlob(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pb, back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("a blob read back differs (-written +read):\n%s", diff)
	}
	if again := encodeBlob(back); string(again) != string(b) {
		t.Error("a blob read back and written again has other bytes: its name would change")
	}
	for _, cut := range []int{len(b) - 1, len(b) / 2, len(blobMagic) + 1} {
		if _, err := decodeBlob(b[:cut]); err == nil {
			t.Errorf("a blob cut at %d of %d bytes was read", cut, len(b))
		}
	}
	if _, err := decodeBlob(append(b[:len(b):len(b)], 0)); err == nil {
		t.Error("a blob with a byte after its end was read")
	}
}
