package backoff

import (
	"context"
	"errors"
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
		start := time.Now()
		if err = r.Wait(context.Background(), p, cause); err != nil {
			break
		}
		waits = append(waits, time.Since(start))
	}
	if err == nil || !errors.Is(err, cause) || !strings.Contains(err.Error(), "x.retry_budget") {
		t.Fatalf("Wait = %v, want the budget spent, naming x.retry_budget and wrapping the cause", err)
	}
	if len(waits) < 3 || waits[0] > waits[2] {
		t.Errorf("waits %v: want them to grow", waits)
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
