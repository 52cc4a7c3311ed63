package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/kafkatest"
	"github.com/mya/deid/pipeline"
	kafkasrc "github.com/mya/deid/sources/kafka"
	"github.com/mya/deid/transforms/consent"
)

// runSettings starts a follower of topic applying into col; it is closed
// (and Run waited for) at cleanup.
func runSettings(t *testing.T, c *kafkatest.Cluster, topic string, col *collector, opts ...kafkasrc.Option) *kafkasrc.Settings {
	t.Helper()
	cfg := testConfig(t, c, "unused")
	s, err := kafkasrc.NewSettings(cfg, topic, col.apply, opts...)
	if err != nil {
		t.Fatalf("NewSettings: %v", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func waitCaughtUp(t *testing.T, s *kafkasrc.Settings) {
	t.Helper()
	if err := s.WaitCaughtUp(ctxT(t)); err != nil {
		t.Fatalf("WaitCaughtUp: %v", err)
	}
}

func kv(p int32, key, value string) kafkatest.Message {
	m := kafkatest.Message{Partition: p, Key: []byte(key)}
	if value != "" {
		m.Value = []byte(value)
	}
	return m
}

// byKey groups what was applied by key, in apply order.
func byKey(got []setting) map[string][]string {
	out := map[string][]string{}
	for _, s := range got {
		v := s.Value
		if s.Tombstone {
			v = "<tombstone>"
		}
		out[s.Key] = append(out[s.Key], v)
	}
	return out
}

func TestSettingsAppliesEveryRecordInOrderWithTombstones(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "settings")
		kafkatest.CreateTopic(t, c.Brokers, topic, 3, true)
		kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{
			kv(0, "ws-1", `{"v":1}`), kv(0, "ws-2", `{"v":1}`), kv(0, "ws-1", `{"v":2}`), kv(0, "ws-1", ""),
			kv(1, "ws-3", `{"v":1}`), kv(1, "ws-3", ""), kv(1, "ws-3", `{"v":3}`),
		})
		col := &collector{}
		s := runSettings(t, c, topic, col)
		waitCaughtUp(t, s)
		want := map[string][]string{
			"ws-1": {`{"v":1}`, `{"v":2}`, "<tombstone>"},
			"ws-2": {`{"v":1}`},
			"ws-3": {`{"v":1}`, "<tombstone>", `{"v":3}`},
		}
		if diff := gocmp.Diff(want, byKey(col.all())); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}

		// It keeps following.
		kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(2, "ws-4", `{"v":1}`), kv(0, "ws-2", "")})
		waitCaughtUp(t, s)
		want["ws-4"] = []string{`{"v":1}`}
		want["ws-2"] = append(want["ws-2"], "<tombstone>")
		if diff := gocmp.Diff(want, byKey(col.all())); diff != "" {
			t.Errorf("applied after following (-want +got):\n%s", diff)
		}
	})
}

func TestWaitCaughtUpWaitsForTheRecordsBeforeTheCallOnly(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		topic := kafkatest.Name(t, "settings")
		kafkatest.CreateTopic(t, c.Brokers, topic, 1, true)
		var before []kafkatest.Message
		for i := range 20 {
			before = append(before, kv(0, fmt.Sprintf("ws-%d", i), fmt.Sprintf("before-%d", i)))
		}
		kafkatest.Produce(t, c.Brokers, topic, before)

		// apply holds back record before-10 until released, and the
		// records produced after the call until the test ends.
		releaseBefore, releaseAfter := make(chan struct{}), make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(releaseAfter) }) })
		col := &collector{gate: func(v string) {
			switch {
			case v == "before-10":
				<-releaseBefore
			case strings.HasPrefix(v, "after-"):
				<-releaseAfter
			}
		}}
		s := runSettings(t, c, topic, col)
		kafkasrc.SetAfterHighWaterMarks(s, func() {
			kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-0", "after-0"), kv(0, "ws-1", "after-1")})
		})
		done := make(chan error, 1)
		go func() { done <- s.WaitCaughtUp(ctxT(t)) }()
		select {
		case err := <-done:
			t.Fatalf("WaitCaughtUp = %v before record before-10 was applied", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(releaseBefore)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("WaitCaughtUp: %v", err)
			}
		case <-time.After(kafkatest.Timeout):
			t.Fatal("WaitCaughtUp waited for records produced after the call")
		}
		var got []string
		for _, s := range col.all() {
			got = append(got, s.Value)
		}
		var want []string
		for _, m := range before {
			want = append(want, string(m.Value))
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("applied when caught up (-want +got):\n%s", diff)
		}

		kafkasrc.SetAfterHighWaterMarks(s, nil)
		once.Do(func() { close(releaseAfter) })
		waitCaughtUp(t, s)
		if n := len(col.all()); n != 22 {
			t.Errorf("%d records applied, want 22", n)
		}
	})
}

func TestWaitCaughtUpFailsClosed(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "settings")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, true)
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-1", "x")})

	// Without Run nothing is applied: WaitCaughtUp waits for ctx.
	col := &collector{}
	s, err := kafkasrc.NewSettings(testConfig(t, c, "unused"), topic, col.apply)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.WaitCaughtUp(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitCaughtUp without Run = %v, want context.DeadlineExceeded", err)
	}

	// Once the follower stops, WaitCaughtUp fails rather than pretending.
	s = runSettings(t, c, topic, &collector{})
	waitCaughtUp(t, s)
	s.Close()
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(1, "ws-2", "y")})
	if err := s.WaitCaughtUp(ctxT(t)); err == nil || !strings.Contains(err.Error(), "not caught up") {
		t.Errorf("WaitCaughtUp after Close = %v, want an error", err)
	}

	// A topic that does not exist is an error, after the retry budget.
	cfg := testConfig(t, c, "unused")
	cfg.RetryBudget = 200 * time.Millisecond
	s, err = kafkasrc.NewSettings(cfg, "no-such-topic", col.apply)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctxT(t)); err == nil || !strings.Contains(err.Error(), `settings topic "no-such-topic"`) {
		t.Errorf("Run on a missing topic = %v, want an error naming it", err)
	}
	if err := s.WaitCaughtUp(ctxT(t)); err == nil {
		t.Error("WaitCaughtUp on a missing topic = nil, want an error")
	}
}

func TestSettingsFollowerSurvivesABrokerRestart(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "settings")
	kafkatest.CreateTopic(t, c.Brokers, topic, 2, true)
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-1", "a"), kv(1, "ws-2", "a")})
	col := &collector{}
	watch := newLogWatch(t)
	s := runSettings(t, c, topic, col, kafkasrc.WithLogger(watch.log))
	waitCaughtUp(t, s)

	c.Stop(t)
	watch.wait(t, "reading the partition failed; retrying")
	c.Start(t)
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-1", "b"), kv(1, "ws-2", "b")})
	waitCaughtUp(t, s)
	want := map[string][]string{"ws-1": {"a", "b"}, "ws-2": {"a", "b"}}
	if diff := gocmp.Diff(want, byKey(col.all())); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}

// consentFollower follows topic into a consent store, as deid run wires it.
func consentFollower(t *testing.T, c *kafkatest.Cluster, topic string, cfg consent.Config) (*kafkasrc.Settings, *consent.Store, chan error) {
	t.Helper()
	key, err := pipeline.NewPseudonymKey([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := consent.New(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kafkasrc.NewSettings(testConfig(t, c, "unused"), topic, func(key, value []byte, pos pipeline.Position) error {
		if value == nil {
			store.Tombstone(string(key))
			return nil
		}
		return store.ApplyValue(key, value, pos.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	store.SetCaughtUp(s.WaitCaughtUp)
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	t.Cleanup(func() { s.Close(); <-ran })
	return s, store, ran
}

func TestSettingsFollowerReadsConsentStrictly(t *testing.T) {
	const good = `{"workspace_id":"ws-1","ai_training_opt_out":false,"updated_by_role":"owner"}`
	tests := []struct {
		name  string
		value string
		// want is ws-1's ingest reason once caught up.
		want pipeline.Reason
	}{
		{"a readable record includes the workspace", good, pipeline.ReasonNone},
		{"an opt-out as a string excludes the workspace as unreadable",
			`{"workspace_id":"ws-1","ai_training_opt_out":"true","updated_by_role":"owner"}`, pipeline.ReasonConsentUnreadable},
		{"a record that is not JSON is attributed by its key",
			`{"workspace_id":`, pipeline.ReasonConsentUnreadable},
		{"a duplicate key excludes the workspace as unreadable",
			`{"workspace_id":"ws-1","ai_training_opt_out":true,"ai_training_opt_out":false,"updated_by_role":"owner"}`, pipeline.ReasonConsentUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkatest.Fake(t)
			topic := kafkatest.Name(t, "settings")
			kafkatest.CreateTopic(t, c.Brokers, topic, 1, true)
			kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-1", good), kv(0, "ws-1", tt.value)})
			_, store, _ := consentFollower(t, c, topic, consent.DefaultConfig())
			if err := store.CaughtUp(ctxT(t)); err != nil {
				t.Fatalf("CaughtUp: %v", err)
			}
			if got := store.Check(&pipeline.Event{WorkspaceID: []byte("ws-1")}); got != tt.want {
				t.Errorf("Check(ws-1) = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAnUnattributableSettingsRecordStopsTheFollower(t *testing.T) {
	c := kafkatest.Fake(t)
	topic := kafkatest.Name(t, "settings")
	kafkatest.CreateTopic(t, c.Brokers, topic, 1, true)
	kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{
		kv(0, "ws-1", `{"workspace_id":"ws-1","ai_training_opt_out":false,"updated_by_role":"owner"}`),
		{Partition: 0, Value: []byte(`{"ai_training_opt_out":"no"}`)}, // no key, no workspace_id
	})
	s, store, ran := consentFollower(t, c, topic, consent.DefaultConfig())
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "names no workspace") || !strings.Contains(err.Error(), topic+"[0]@1") {
			t.Errorf("Run = %v, want the unattributable record's error at offset 1", err)
		}
		ran <- err // for the cleanup
	case <-ctxT(t).Done():
		t.Fatal("the follower did not stop")
	}
	if err := s.Err(); err == nil {
		t.Error("Err = nil after the follower stopped (readiness would hold)")
	}
	if err := store.CaughtUp(ctxT(t)); err == nil {
		t.Error("CaughtUp = nil, want an error: nothing may be published")
	}

	t.Run("with skip the follower goes on", func(t *testing.T) {
		cfg := consent.DefaultConfig()
		cfg.Unattributable = consent.UnattributableSkip
		kafkatest.Produce(t, c.Brokers, topic, []kafkatest.Message{kv(0, "ws-2", `{"workspace_id":"ws-2","ai_training_opt_out":false,"updated_by_role":"owner"}`)})
		_, store, _ := consentFollower(t, c, topic, cfg)
		if err := store.CaughtUp(ctxT(t)); err != nil {
			t.Fatalf("CaughtUp: %v", err)
		}
		if got := store.Check(&pipeline.Event{WorkspaceID: []byte("ws-2")}); got != pipeline.ReasonNone {
			t.Errorf("Check(ws-2) = %q, want included", got)
		}
		if un := store.Unattributable(); len(un) != 1 || un[0].Position != topic+"[0]@1" {
			t.Errorf("Unattributable = %+v, want the record at offset 1", un)
		}
	})
}
