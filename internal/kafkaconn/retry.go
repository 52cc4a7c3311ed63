package kafkaconn

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	kafka "github.com/segmentio/kafka-go"

	"github.com/mya/deid/internal/backoff"
)

// Transient tells whether err is worth retrying: a broker-side error Kafka
// marks retriable (leader not available, not leader, coordinator moving,
// request timed out…) or a network failure (refused, reset, closed, timed
// out, cut short).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		// A produce that failed for some messages: worth retrying when
		// every failure is.
		for _, e := range we {
			if e != nil && !Transient(e) {
				return false
			}
		}
		return we.Count() > 0
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrNoProgress),
		errors.Is(err, io.ErrClosedPipe), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Retrier follows one run of consecutive transient failures with the
// backoff of a Config (kafka.retry_backoff, retry_backoff_max,
// retry_budget), for a loop Retry cannot express: one that keeps its run
// across calls (a partition reader) or decides more than Transient does.
// Make it with NewRetrier; it is not safe for concurrent use.
type Retrier struct {
	cfg *Config
	run backoff.Run
}

// NewRetrier returns a Retrier following cfg's backoff. cfg must outlive it.
func NewRetrier(cfg *Config) Retrier { return Retrier{cfg: cfg} }

// Reset marks a success: the next failure starts a new run.
func (r *Retrier) Reset() { r.run.Reset() }

// Backoff records a transient failure and waits before the next attempt.
// It returns an error wrapping err when the budget is spent, or ctx.Err()
// when ctx is done while waiting.
func (r *Retrier) Backoff(ctx context.Context, err error) error {
	return r.run.Wait(ctx, r.cfg.retryPolicy(), err)
}

// BackoffConstant is Backoff with every wait kept at the first one
// (retry_backoff), the budget unchanged: for an operation that already
// backs off on its own between attempts.
func (r *Retrier) BackoffConstant(ctx context.Context, err error) error {
	p := r.cfg.retryPolicy()
	p.Max = p.Backoff
	return r.run.Wait(ctx, p, err)
}

// retryPolicy is the backoff of c.
func (c *Config) retryPolicy() backoff.Policy {
	return backoff.Policy{Backoff: c.RetryBackoff, Max: c.RetryBackoffMax,
		Budget: c.RetryBudget, Setting: "kafka.retry_budget"}
}

// Retry calls op until it succeeds, fails with an error that retrying cannot
// fix, or its transient failures (a broker restarting, a leader moving) have
// lasted longer than cfg.RetryBudget, backing off between attempts as the
// readers do. It returns op's last error, saying so when the budget ran
// out, or ctx's error.
func Retry(ctx context.Context, cfg *Config, op func(context.Context) error) error {
	r := NewRetrier(cfg)
	for {
		err := op(ctx)
		if err == nil || !Transient(err) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if berr := r.Backoff(ctx, err); berr != nil {
			return berr
		}
	}
}
