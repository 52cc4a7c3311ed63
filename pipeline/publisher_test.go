package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// gatedConsent is consent whose follower is not caught up until released,
// or has failed.
type gatedConsent struct {
	fakeConsent
	called  chan struct{} // receives once per CaughtUp call
	release chan struct{} // closed when the follower catches up
	err     error         // returned instead, when set
}

func (c *gatedConsent) CaughtUp(ctx context.Context) error {
	select {
	case c.called <- struct{}{}:
	default:
	}
	if c.err != nil {
		return c.err
	}
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func runGated(ctx context.Context, c *gatedConsent) (*memSinks, chan error) {
	src := memSource{"p": {
		ev("campaign.metrics", "1", "w", t0.Add(time.Hour)),
		ev("campaign.metrics", "2", "w", t0.Add(3*day)),
	}}
	sinks := &memSinks{chains: map[string]*memChain{}}
	st := Stages{Source: src, NewDecoder: func() Decoder { return fakeDecoder{} }, Consent: c,
		Gates: []Gate{fakeAgeGate{}}, Aggregators: []Aggregator{fakeAgg{}}, Privacy: fakePrivacy{},
		Datasets: sinks, Exclusions: sinks, DeadLetters: sinks}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, DefaultConfig(), st, WithClock(func() time.Time { return t0.Add(30 * day) }))
		done <- err
	}()
	return sinks, done
}

func (m *memSinks) published() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outs)
}

func TestThePublisherWaitsForConsent(t *testing.T) {
	t.Run("nothing is published until consent has caught up", func(t *testing.T) {
		c := &gatedConsent{called: make(chan struct{}, 1), release: make(chan struct{})}
		sinks, done := runGated(context.Background(), c)
		select {
		case <-c.called:
		case err := <-done:
			t.Fatalf("Run returned (%v) without waiting for consent; %d windows published", err, sinks.published())
		case <-time.After(10 * time.Second):
			t.Fatal("the publisher never asked whether consent is caught up")
		}
		if n := sinks.published(); n != 0 {
			t.Fatalf("%d windows published while consent was behind", n)
		}
		close(c.release)
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := sinks.published(); n != 2 {
			t.Errorf("%d windows published once consent caught up, want 2", n)
		}
	})
	t.Run("a consent error stops publication", func(t *testing.T) {
		c := &gatedConsent{called: make(chan struct{}, 1), err: errors.New("consent: settings record settings[0]@7 names no workspace")}
		sinks, done := runGated(context.Background(), c)
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "names no workspace") {
			t.Errorf("Run = %v, want the consent error", err)
		}
		if n := sinks.published(); n != 0 {
			t.Errorf("%d windows published although consent failed", n)
		}
	})
}
