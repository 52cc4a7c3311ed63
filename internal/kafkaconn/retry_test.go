package kafkaconn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/kafkaconn"
)

func TestTransientTellsRetriableFailuresApart(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no error is not a failure", nil, false},
		{"a leader moving is transient", fmt.Errorf("fetch: %w", kafka.LeaderNotAvailable), true},
		{"an authorization failure is not", kafka.TopicAuthorizationFailed, false},
		{"a refused connection is transient", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"a connection cut short is transient", io.ErrUnexpectedEOF, true},
		{"a produce failing for transient reasons only is transient",
			kafka.WriteErrors{nil, kafka.NotLeaderForPartition, kafka.RequestTimedOut}, true},
		{"a produce with one lasting failure is not",
			kafka.WriteErrors{kafka.NotLeaderForPartition, kafka.MessageSizeTooLarge}, false},
		{"any other error is not", errors.New("bad record"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kafkaconn.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func fastRetries(budget time.Duration) *kafkaconn.Config {
	cfg := kafkaconn.DefaultConfig()
	cfg.RetryBackoff, cfg.RetryBackoffMax, cfg.RetryBudget = time.Millisecond, 4*time.Millisecond, budget
	return &cfg
}

func TestRetryRetriesOnlyTransientFailuresWithinTheBudget(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := kafkaconn.Retry(ctx, fastRetries(time.Minute), func(context.Context) error {
		if calls++; calls < 3 {
			return syscall.ECONNRESET
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("two transient failures then success: Retry = %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	lasting := kafka.TopicAuthorizationFailed
	if err := kafkaconn.Retry(ctx, fastRetries(time.Minute), func(context.Context) error { calls++; return lasting }); !errors.Is(err, lasting) || calls != 1 {
		t.Errorf("a lasting failure: Retry = %v after %d calls, want it at once", err, calls)
	}

	err = kafkaconn.Retry(ctx, fastRetries(20*time.Millisecond), func(context.Context) error { return syscall.ECONNREFUSED })
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "kafka.retry_budget") {
		t.Errorf("failing past the budget: Retry = %v, want the failure, naming kafka.retry_budget", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := kafkaconn.Retry(cctx, fastRetries(time.Minute), func(context.Context) error { return syscall.ECONNREFUSED }); !errors.Is(err, context.Canceled) {
		t.Errorf("with the context done: Retry = %v, want context.Canceled", err)
	}
}

func TestBackoffConstantKeepsTheFirstWait(t *testing.T) {
	cfg := kafkaconn.DefaultConfig()
	cfg.RetryBackoff, cfg.RetryBackoffMax, cfg.RetryBudget = time.Millisecond, time.Hour, time.Hour
	r := kafkaconn.NewRetrier(&cfg)
	start := time.Now()
	// Doubling, the 12th wait alone would be 2s.
	for range 12 {
		if err := r.BackoffConstant(context.Background(), syscall.ECONNREFUSED); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("12 constant waits of 1ms took %s", d)
	}
}
