// Package backoff waits between the attempts of an operation that fails
// transiently — a broker restarting, an object store throttling — with
// exponential backoff, and gives up once the failures have lasted longer
// than a time budget. It is the one retry rhythm of deid's Kafka source and
// sinks and of its object store, with the settings that configure it; each
// of them decides what is transient.
package backoff

import (
	"context"
	"fmt"
	"time"
)

// Policy is how long to wait and for how long to keep trying.
type Policy struct {
	// Backoff is the first wait; each further one doubles, up to Max.
	Backoff, Max time.Duration
	// Budget bounds one run of consecutive failures, from the first.
	Budget time.Duration
	// Setting names the configuration key of Budget, for the error that
	// says it was spent (e.g. "kafka.retry_budget").
	Setting string
}

// Run follows one run of consecutive transient failures. The zero value is
// ready; a Run is not safe for concurrent use.
type Run struct {
	since   time.Time
	attempt int
}

// Reset marks a success: the next failure starts a new run.
func (r *Run) Reset() { r.since, r.attempt = time.Time{}, 0 }

// Wait records the transient failure err and blocks until the next attempt
// is due. It returns an error wrapping err, naming p.Setting, when the run
// has lasted p.Budget already, and ctx's error when ctx is done first.
func (r *Run) Wait(ctx context.Context, p Policy, err error) error {
	now := time.Now()
	if r.since.IsZero() {
		r.since = now
	}
	if spent := now.Sub(r.since); spent >= p.Budget {
		return fmt.Errorf("still failing after %s of retries (%s): %w", spent.Round(time.Millisecond), p.Setting, err)
	}
	d := r.delay(p)
	r.attempt++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// delay is the wait before the next attempt: p.Backoff doubled for each
// failure of the run so far, up to p.Max.
func (r *Run) delay(p Policy) time.Duration {
	d := p.Backoff << min(r.attempt, 20)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	return d
}

// Settings are the retry settings of a client that retries, as deid's
// configuration states them. Each such section (kafka, storage.s3) embeds
// them with `yaml:",inline"`, so that their keys sit beside its own.
type Settings struct {
	// RetryBackoff is the first wait after a transient failure; each
	// further failure in a row doubles it, up to RetryBackoffMax.
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// RetryBudget is how long a run of transient failures may last before
	// the last failure is returned as an error instead of retried.
	RetryBudget time.Duration `yaml:"retry_budget"`
}

// Problems reports every problem of s, each prefixed with its YAML path
// under section (e.g. "kafka"). maxExample is the retry_backoff_max that
// the message suggests (the section's default, e.g. "2s").
func (s Settings) Problems(section, maxExample string) []error {
	var errs []error
	if s.RetryBackoff <= 0 {
		errs = append(errs, fmt.Errorf("%s.retry_backoff: must be positive, e.g. 100ms (got %s)", section, s.RetryBackoff))
	}
	if s.RetryBackoffMax < s.RetryBackoff {
		errs = append(errs, fmt.Errorf("%s.retry_backoff_max: must be at least retry_backoff (%s), e.g. %s (got %s)", section, s.RetryBackoff, maxExample, s.RetryBackoffMax))
	}
	if s.RetryBudget < 0 {
		errs = append(errs, fmt.Errorf("%s.retry_budget: must not be negative, e.g. 1m (got %s)", section, s.RetryBudget))
	}
	return errs
}
