package githubapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultRequestTimeout bounds each call of the App's clients of GitHub
// and of SMEK, unless WithTimeout says otherwise. A create through the
// SMEK API gets its wait on top.
const DefaultRequestTimeout = 30 * time.Second

// ErrRequestTimeout is the cause of a call of the App's clients that got
// no complete answer within its timeout. Another try may succeed.
var ErrRequestTimeout = errors.New("no answer within the request timeout")

// ClientOption configures the App's clients of GitHub (NewAppClient) and
// of SMEK (NewAPIClusters, NewDeliveryClient).
type ClientOption func(*callBounds)

// WithTimeout bounds each call: a connection that hangs cannot hold a
// worker longer. Zero or less keeps DefaultRequestTimeout.
func WithTimeout(d time.Duration) ClientOption {
	return func(b *callBounds) {
		if d > 0 {
			b.timeout = d
		}
	}
}

// WithClock times the calls' deadlines (tests move a fake clock).
func WithClock(c clockwork.Clock) ClientOption {
	return func(b *callBounds) {
		if c != nil {
			b.clock = c
		}
	}
}

// callBounds puts a deadline on each call of a client.
type callBounds struct {
	timeout time.Duration
	clock   clockwork.Clock
}

func newCallBounds(opts []ClientOption) callBounds {
	b := callBounds{timeout: DefaultRequestTimeout, clock: clockwork.NewRealClock()}
	for _, o := range opts {
		o(&b)
	}
	return b
}

// bound returns ctx cancelled after d, with ErrRequestTimeout as its cause.
func (b callBounds) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return withTimeout(ctx, b.clock, d, ErrRequestTimeout)
}

// explain says that err of a call on ctx (from bound) came from its
// deadline, when it did.
func (b callBounds) explain(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), ErrRequestTimeout) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRequestTimeout, err)
}
