package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The engine's tests use small fakes for every stage, so that they test the
// engine's own rules: gate order, windows, watermarks, lateness, duplicates,
// publication and accounting.

var day = 24 * time.Hour

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// ev renders a test record: type, id, workspace, event time.
func ev(typ, id, ws string, at time.Time) string {
	return fmt.Sprintf(`{"event_type":%q,"event_id":%q,"workspace_id":%q,"occurred_at":%q,"age":0}`, typ, id, ws, at.Format(time.RFC3339))
}

type fakeDecoder struct{}

func (fakeDecoder) Decode(b []byte, e *Event) error {
	var v struct {
		Type, ID, WS string
		At           time.Time
		Age          int64
	}
	aux := struct {
		Type *string    `json:"event_type"`
		ID   *string    `json:"event_id"`
		WS   *string    `json:"workspace_id"`
		At   *time.Time `json:"occurred_at"`
		Age  *int64     `json:"age"`
	}{&v.Type, &v.ID, &v.WS, &v.At, &v.Age}
	if err := json.Unmarshal(b, &aux); err != nil {
		return &MalformedError{Code: "invalid_json"}
	}
	*e = Event{EventID: []byte(v.ID), EventType: []byte(v.Type), WorkspaceID: []byte(v.WS), OccurredAt: v.At.UnixMicro()}
	switch {
	case v.Type == "campaign.metrics":
		e.Kind = KindCampaignMetrics
		e.Campaign.HasAge = v.Age > 0
		e.Campaign.CreatorAge = v.Age
	case strings.HasPrefix(v.Type, "message."):
		e.Kind = KindMessage
	}
	return nil
}

type fakeConsent struct {
	mu      sync.Mutex
	ingest  map[string]Reason
	publish map[string]Reason
	// key pseudonymizes workspaces; nil means testKey.
	key *PseudonymKey
}

func (c *fakeConsent) Check(e *Event) Reason { return c.ingest[string(e.WorkspaceID)] }
func (c *fakeConsent) AtPublish(ws Pseudonym) (Reason, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pz := c.PseudonymKey().Pseudonymizer()
	for id, r := range c.publish {
		if pz.Of([]byte(id)) == ws {
			return r, id
		}
	}
	return ReasonNone, ""
}
func (c *fakeConsent) CaughtUp(ctx context.Context) error { return ctx.Err() }
func (c *fakeConsent) PseudonymKey() *PseudonymKey {
	if c.key != nil {
		return c.key
	}
	return testKey
}

type fakeAgeGate struct{}

func (fakeAgeGate) Check(e *Event) Reason {
	if e.Campaign.HasAge && e.Campaign.CreatorAge < 13 {
		return ReasonMinorUnder13
	}
	return ReasonNone
}

var testSpec = &DatasetSpec{Name: "campaign_metrics", Kinds: []EventKind{KindCampaignMetrics},
	Dimensions: []Dimension{{Name: "d"}}}

type fakeAgg struct{}

func (fakeAgg) Spec() *DatasetSpec { return testSpec }
func (fakeAgg) Add(p *Partial, e *Event, ws Pseudonym, pz *Pseudonymizer) {
	key := CellKey{"all"}
	if p.Cells[key] == nil {
		p.Cells[key] = map[Pseudonym]*Contribution{}
	}
	c := p.Cells[key][ws]
	if c == nil {
		c = NewContribution(0, 0)
		p.Cells[key][ws] = c
	}
	c.Events++
}

// fakePrivacy publishes one row per cell with its event count.
type fakePrivacy struct{}

func (fakePrivacy) Apply(spec *DatasetSpec, p *Partial) (*GateResult, error) {
	res := &GateResult{EventsByLevel: map[int]int64{}}
	for _, key := range sortedCells(p.Cells) {
		var n int64
		for _, c := range p.Cells[key] {
			n += c.Events
		}
		res.Rows = append(res.Rows, Row{Dims: []string{key[0]}, Values: []Value{{Int: n}}})
		res.PublishedEvents += n
		res.EventsByLevel[0] += n
	}
	return res, nil
}

type memSinks struct {
	mu      sync.Mutex
	outs    []*WindowOutput
	chains  map[string]*memChain
	letters []string
}

func (m *memSinks) Commit(_ context.Context, out *WindowOutput) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outs = append(m.outs, out)
	return nil
}
func (m *memSinks) Published(string, Window) (bool, error) { return false, nil }
func (m *memSinks) Chain(name string) (ExclusionChain, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &memChain{}
	m.chains[name] = c
	return c, nil
}
func (m *memSinks) Writer(PartitionID) (DeadLetterWriter, error) { return &memDead{m: m}, nil }

type memChain struct {
	entries   []Exclusion
	committed int
	commits   int
}

func (c *memChain) Append(e *Exclusion) error { c.entries = append(c.entries, *e); return nil }
func (c *memChain) Commit(context.Context, *PartitionAccounting) (string, error) {
	c.committed = len(c.entries)
	c.commits++
	return fmt.Sprintf("head-%d", c.commits), nil
}
func (c *memChain) Head() string { return fmt.Sprintf("head-%d", c.commits) }
func (c *memChain) Seq() int     { return c.commits }
func (c *memChain) Rollback(seq int) error {
	c.commits = seq
	return nil
}

type memDead struct{ m *memSinks }

func (d *memDead) Write(r Record, me *MalformedError) error {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.m.letters = append(d.m.letters, fmt.Sprintf("%s %s", r.Pos, me.Code))
	return nil
}
func (d *memDead) Flush(context.Context) error { return nil }
func (d *memDead) Close() error                { return nil }

// memSource serves each partition's lines in batches of two; line n is at
// position n (1-based), and it resumes at the position resume names.
type memSource map[string][]string

func (s memSource) Open(_ context.Context, resume Resume) ([]PartitionReader, error) {
	var out []PartitionReader
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range s {
			if !yield(k) {
				return
			}
		}
	}) {
		r := &memReader{id: PartitionID{Source: name}, lines: s[name]}
		if resume != nil {
			if next, ok := resume(r.id); ok && next > 0 {
				r.next = int(next) - 1
			}
		}
		out = append(out, r)
	}
	return out, nil
}

type memReader struct {
	id    PartitionID
	lines []string
	next  int
}

func (r *memReader) ID() PartitionID { return r.id }
func (r *memReader) Close() error    { return nil }
func (r *memReader) Next(context.Context) ([]Record, error) {
	if r.next >= len(r.lines) {
		return nil, io.EOF
	}
	var batch []Record
	for i := 0; i < 2 && r.next < len(r.lines); i++ {
		r.next++
		batch = append(batch, Record{Pos: Position{Source: r.id.Source, Offset: int64(r.next)}, Value: []byte(r.lines[r.next-1])})
	}
	return batch, nil
}

var testKey = mustKey("k")

func mustKey(raw string) *PseudonymKey {
	k, err := NewPseudonymKey([]byte(raw))
	if err != nil {
		panic(err)
	}
	return k
}

type result struct {
	summary *Summary
	sinks   *memSinks
}

func runEngine(t *testing.T, src memSource, consent *fakeConsent) result {
	t.Helper()
	sinks := &memSinks{chains: map[string]*memChain{}}
	if consent == nil {
		consent = &fakeConsent{}
	}
	st := Stages{Source: src, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: consent,
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks}
	now := func() time.Time { return t0.Add(30 * day) }
	sum, err := Run(context.Background(), DefaultConfig(), st, WithClock(now))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return result{sum, sinks}
}

// reasons lists the exclusion reasons of a chain's entries, with the event ids.
func reasons(c *memChain) []string {
	var out []string
	for _, e := range c.entries {
		if e.Cell != nil {
			out = append(out, fmt.Sprintf("%s %s %d", e.Reason, e.WorkspaceID, e.Cell.Events))
			continue
		}
		out = append(out, e.EventID+" "+e.Reason.String())
	}
	return out
}

func TestGatesTakeTheFirstReasonInSpecOrder(t *testing.T) {
	src := memSource{"p": {
		ev("campaign.metrics", "a", "ok", t0.Add(time.Hour)),
		ev("campaign.metrics", "a", "ok", t0.Add(time.Hour)),    // duplicate
		ev("message.direct", "m", "opted", t0.Add(time.Hour)),   // message before consent
		ev("account.login", "u", "ok", t0.Add(time.Hour)),       // unsupported
		ev("campaign.metrics", "o", "opted", t0.Add(time.Hour)), // consent
		`{"event_type":"campaign.metrics","event_id":"kid","workspace_id":"ok","occurred_at":"2026-11-01T02:00:00Z","age":9}`,
		`{"event_type":"campaign.metrics","event_id":"kid2","workspace_id":"opted","occurred_at":"2026-11-01T02:00:00Z","age":9}`,
		`not json`,
		ev("campaign.metrics", "future", "ok", t0.Add(40*day)),     // beyond max_future_skew
		ev("campaign.metrics", "b", "ok", t0.Add(2*day)),           // moves the watermark past day 1
		ev("campaign.metrics", "late", "ok", t0.Add(time.Hour)),    // window of day 0 closed
		ev("message.direct", "a", "ok", t0.Add(2*day+time.Minute)), // same id, other window: not a duplicate
	}}
	r := runEngine(t, src, &fakeConsent{ingest: map[string]Reason{"opted": ReasonOptedOut}})
	want := []string{"a duplicate", "m message_content", "u unsupported_event_type", "o opted_out",
		"kid minor_under_13", "kid2 opted_out", "late late_event", "a message_content"}
	if diff := cmp.Diff(want, reasons(r.sinks.chains["p[0]"])); diff != "" {
		t.Errorf("exclusions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"p[0]@8 invalid_json", "p[0]@9 future_timestamp"}, r.sinks.letters); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	acct := r.summary.Partitions[0]
	if !acct.Balanced() || acct.Read != 12 || acct.Contributed != 2 || acct.DeadLetters != 2 {
		t.Errorf("accounting = %+v, want 12 read = 2 contributed + 8 excluded + 2 dead letters", acct)
	}
}

func TestWindowsCloseOnWatermarkAndLatenessRule(t *testing.T) {
	// Day 0 closes when the watermark (max − 10m) reaches day 1 + 1h.
	src := memSource{"p": {
		ev("campaign.metrics", "1", "w", t0.Add(23*time.Hour)),
		ev("campaign.metrics", "2", "w", t0.Add(day+70*time.Minute)), // watermark = day1+1h00m: closes day 0
		ev("campaign.metrics", "3", "w", t0.Add(23*time.Hour)),       // late
		ev("campaign.metrics", "4", "w", t0.Add(day+69*time.Minute)),
	}}
	r := runEngine(t, src, nil)
	if diff := cmp.Diff([]string{"3 late_event"}, reasons(r.sinks.chains["p[0]"])); diff != "" {
		t.Errorf("exclusions (-want +got):\n%s", diff)
	}
	src["p"][1] = ev("campaign.metrics", "2", "w", t0.Add(day+69*time.Minute)) // one minute short: still open
	r = runEngine(t, src, nil)
	if got := reasons(r.sinks.chains["p[0]"]); len(got) != 0 {
		t.Errorf("exclusions = %v, want none (the window is still open)", got)
	}
}

func TestWindowIsPublishedOnceEveryPartitionClosedIt(t *testing.T) {
	src := memSource{
		"a": {ev("campaign.metrics", "a1", "w", t0.Add(time.Hour)), ev("campaign.metrics", "a2", "w", t0.Add(3*day))},
		"b": {ev("campaign.metrics", "b1", "v", t0.Add(2*time.Hour))},
	}
	r := runEngine(t, src, nil)
	var got []string
	for _, o := range r.sinks.outs {
		got = append(got, fmt.Sprintf("%s events=%d rows=%d parts=%d", formatWindow(o.Window), o.Acct.Contributed, len(o.Rows), len(o.Partitions)))
	}
	want := []string{
		"2026-11-01T00:00:00Z/2026-11-02T00:00:00Z events=2 rows=1 parts=2",
		"2026-11-04T00:00:00Z/2026-11-05T00:00:00Z events=1 rows=1 parts=2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published windows (-want +got):\n%s", diff)
	}
	for _, o := range r.sinks.outs {
		if o.ChainHeads["a[0]"] == "" || o.ChainHeads["b[0]"] == "" || o.ChainHeads[PublishChain] == "" {
			t.Errorf("window %s: manifest chain heads %v miss a partition", formatWindow(o.Window), o.ChainHeads)
		}
	}
}

func TestConsentIsCheckedAgainAtPublication(t *testing.T) {
	src := memSource{"p": {
		ev("campaign.metrics", "1", "stays", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "leaves", t0.Add(time.Hour)),
		ev("campaign.metrics", "3", "leaves", t0.Add(2*time.Hour)),
		ev("campaign.metrics", "4", "deleted", t0.Add(2*time.Hour)),
	}}
	c := &fakeConsent{publish: map[string]Reason{"leaves": ReasonOptedOutBeforePublish, "deleted": ReasonDeletedBeforePublish}}
	r := runEngine(t, src, c)
	got := reasons(r.sinks.chains[PublishChain])
	slices.Sort(got)
	want := []string{"deleted_before_publish deleted 1", "opted_out_before_publish leaves 2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withdrawals (-want +got):\n%s", diff)
	}
	o := r.sinks.outs[0]
	if o.Acct.Contributed != 4 || o.Acct.Published != 1 || o.Acct.Withdrawn != 3 || o.Rows[0].Values[0].Int != 1 {
		t.Errorf("accounting %+v, rows %+v: want 4 contributed = 1 published + 3 withdrawn", o.Acct, o.Rows)
	}
}

func TestExclusionsAreCommittedBeforeTheWindowIsHandedOver(t *testing.T) {
	src := memSource{"p": {
		ev("message.direct", "m", "w", t0.Add(time.Hour)),
		ev("campaign.metrics", "1", "w", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "w", t0.Add(3*day)),
	}}
	r := runEngine(t, src, nil)
	c := r.sinks.chains["p[0]"]
	if c.committed != len(c.entries) {
		t.Errorf("%d of %d exclusions committed", c.committed, len(c.entries))
	}
	if r.sinks.outs[0].ChainHeads["p[0]"] == "" {
		t.Error("the first window's manifest names no chain head for the partition")
	}
}
