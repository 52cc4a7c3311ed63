package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/mya/deid/internal/backoff"
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
			"ConditionalRequestConflict",
			// A store on a file system (versitygw's posix backend) answers
			// it when writers under a new prefix create its directory at
			// once (several instances of a job starting together); the
			// directory is there when asked again. A key that really is a
			// directory fails once the budget is spent.
			"ExistingObjectIsDirectory":
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

// retrier follows one run of consecutive transient failures with the
// backoff of cfg (storage.s3.retry_backoff, retry_backoff_max,
// retry_budget).
type retrier struct {
	cfg     *S3Config
	run     backoff.Run
	onRetry func(op string, err error)
}

// backoff records a transient failure of op and waits before the next
// attempt. It returns an error wrapping err when the budget is spent, or
// ctx's error when ctx is done while waiting.
func (r *retrier) backoff(ctx context.Context, op string, err error) error {
	if r.onRetry != nil {
		r.onRetry(op, err)
	}
	werr := r.run.Wait(ctx, backoff.Policy{Backoff: r.cfg.RetryBackoff, Max: r.cfg.RetryBackoffMax,
		Budget: r.cfg.RetryBudget, Setting: "storage.s3.retry_budget"}, err)
	if werr != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (while retrying after: %w)", ctx.Err(), err)
	}
	return werr
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
			r.run.Reset()
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
