package backoff

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
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
