package backoff

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWaitDoublesUpToItsMaxAndStopsAtTheBudget: the waits double from
// Backoff up to Max, the run gives up once it has lasted Budget, naming the
// setting and wrapping the failure, and Reset starts a new run.
func TestWaitDoublesUpToItsMaxAndStopsAtTheBudget(t *testing.T) {
	p := Policy{Backoff: time.Millisecond, Max: 4 * time.Millisecond, Budget: 60 * time.Millisecond, Setting: "x.retry_budget"}
	cause := errors.New("refused")
	var r Run
	var waits []time.Duration
	var err error
	for range 100 {
		// The wait Wait is about to make (measuring it would measure the
		// machine's timers as well).
		d := r.delay(p)
		if err = r.Wait(context.Background(), p, cause); err != nil {
			break
		}
		waits = append(waits, d)
	}
	if err == nil || !errors.Is(err, cause) || !strings.Contains(err.Error(), "x.retry_budget") {
		t.Fatalf("Wait = %v, want the budget spent, naming x.retry_budget and wrapping the cause", err)
	}
	ms := time.Millisecond
	if len(waits) < 4 || waits[0] != ms || waits[1] != 2*ms || waits[2] != 4*ms || slices.ContainsFunc(waits[2:], func(d time.Duration) bool { return d != 4*ms }) {
		t.Errorf("waits %v: want 1ms, 2ms, then 4ms (the max) until the budget is spent", waits)
	}
	r.Reset()
	if err := r.Wait(context.Background(), p, cause); err != nil {
		t.Errorf("after Reset, Wait = %v, want a new run", err)
	}
}

// TestWaitEndsWithItsContext: a cancelled context ends a wait at once.
func TestWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r Run
	p := Policy{Backoff: time.Hour, Max: time.Hour, Budget: 2 * time.Hour, Setting: "x"}
	if err := r.Wait(ctx, p, errors.New("refused")); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

// TestSettingsProblemsNameEachKeyUnderItsSection: each bad setting is one
// problem, prefixed with its YAML path under the section.
func TestSettingsProblemsNameEachKeyUnderItsSection(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want []string
	}{
		{"sound settings have no problem", Settings{RetryBackoff: time.Millisecond, RetryBackoffMax: time.Second}, nil},
		{"every bad setting is named", Settings{RetryBackoffMax: -1, RetryBudget: -time.Second}, []string{
			"x.y.retry_backoff: must be positive, e.g. 100ms (got 0s)",
			"x.y.retry_backoff_max: must be at least retry_backoff (0s), e.g. 3s (got -1ns)",
			"x.y.retry_budget: must not be negative, e.g. 1m (got -1s)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, err := range tt.s.Problems("x.y", "3s") {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
		})
	}
}
