package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/smek/action/internal/client"
)

// explain turns an API error into a message that says what happened and
// what to do about it. apiURL names the server; wait is the wait budget of
// a create (0 for other calls). The original error stays in the chain.
func explain(err error, apiURL string, wait time.Duration) error {
	var apiErr *client.Error
	switch {
	case client.IsUnreachable(err):
		return explained(err, "cannot reach the SMEK server at %s: %v", apiURL, err)
	case errors.Is(err, context.DeadlineExceeded) && wait > 0:
		return explained(err, "no cluster within the wait budget of %s: the server did not answer in time", wait)
	case !errors.As(err, &apiErr):
		return err
	case client.IsUnauthorized(err):
		return explained(err, "the SMEK server at %s refused the credential (401 %s): %s; check the token, or with OIDC that the server trusts this repository and audience", apiURL, apiErr.Problem.Code, apiErr.Message())
	case client.IsForbidden(err):
		return explained(err, "not permitted (403 %s): %s", apiErr.Problem.Code, apiErr.Message())
	case client.IsLimit(err):
		return explained(err, "limit reached (429 %s): %s; end a cluster you no longer need, or try again later", apiErr.Problem.Code, apiErr.Message())
	case client.IsUnavailable(err) && wait > 0:
		return explained(err, "no cluster became ready within the wait budget of %s (503 %s): %s; raise the wait input, or the server's pool size", wait, apiErr.Problem.Code, apiErr.Message())
	case client.IsInvalid(err):
		return explained(err, "the SMEK server rejected the request (400 %s): %s", apiErr.Problem.Code, apiErr.Message())
	}
	return explained(err, "SMEK server: %v", err)
}

// explainedError is an error told in words for people, keeping the
// original in the chain for errors.Is/As.
type explainedError struct {
	msg string
	err error
}

func explained(err error, format string, args ...any) error {
	return &explainedError{msg: fmt.Sprintf(format, args...), err: err}
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }
