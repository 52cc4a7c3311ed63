package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// transient tells whether an S3 request's error is worth retrying: the
// store answered 5xx, 429 or 408, or a throttling code; or the request did
// not get an answer at all (refused, reset, cut short, timed out). A
// failure to find credentials, a 4xx answer (access denied, no such bucket,
// precondition failed) or a cancelled context is not.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se *v4.SigningError
	if errors.As(err, &se) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded",
			// Another conditional write on the key was in flight: AWS
			// asks to retry.
			"ConditionalRequestConflict":
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		code := re.HTTPStatusCode()
		return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return true
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// retrier follows one run of consecutive transient failures: it waits with
// exponential backoff and gives up once the failures have lasted longer
// than the retry budget.
type retrier struct {
	cfg     *S3Config
	since   time.Time
	attempt int
	onRetry func(op string, err error)
}

// backoff records a transient failure of op and waits before the next
// attempt. It returns an error wrapping err when the budget is spent, or
// ctx's error when ctx is done while waiting.
func (r *retrier) backoff(ctx context.Context, op string, err error) error {
	now := time.Now()
	if r.since.IsZero() {
		r.since = now
	}
	if spent := now.Sub(r.since); spent >= r.cfg.RetryBudget {
		return fmt.Errorf("still failing after %s of retries (storage.s3.retry_budget): %w", spent.Round(time.Millisecond), err)
	}
	if r.onRetry != nil {
		r.onRetry(op, err)
	}
	d := r.cfg.RetryBackoff << min(r.attempt, 20)
	if d <= 0 || d > r.cfg.RetryBackoffMax {
		d = r.cfg.RetryBackoffMax
	}
	r.attempt++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w (while retrying after: %w)", ctx.Err(), err)
	case <-t.C:
		return nil
	}
}

// do calls attempt until it succeeds, fails with an error that retrying
// cannot fix, or its transient failures have outlasted the budget. It
// returns attempt's last error (saying so when the budget ran out) or
// ctx's error.
func (r *retrier) do(ctx context.Context, op string, attempt func(context.Context) error) error {
	for {
		err := attempt(ctx)
		if err == nil {
			// The next failure starts a new run.
			r.since, r.attempt = time.Time{}, 0
			return nil
		}
		if !transient(err) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (while retrying after: %w)", cerr, err)
		}
		if berr := r.backoff(ctx, op, err); berr != nil {
			return berr
		}
	}
}
