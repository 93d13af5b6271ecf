// Package webhook is what SMEK keeps of a GitHub webhook delivery: the
// state of its work (accepted, then done or given up), how many tries of
// it began and when the next one is due. The GitHub App records it, SQLite
// keeps it, and the provisioner's API carries it for the standalone App,
// so that work accepted before a crash is resumed after it. Standard
// library only.
package webhook

import (
	"fmt"
	"time"
)

// State is where a delivery's work stands.
type State string

// States of a delivery's work: accepted → done, or accepted → given up
// (and back to accepted when GitHub redelivers it).
const (
	// Accepted work is verified and recorded but not finished: it is
	// resumed after a restart, and a redelivery runs it again.
	Accepted State = "accepted"
	// Done work succeeded; a redelivery is a duplicate.
	Done State = "done"
	// GivenUp work failed for good (a permanent error, or no tries
	// left); Reason says why.
	GivenUp State = "given-up"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	return s == Accepted || s == Done || s == GivenUp
}

// Delivery is a recorded delivery.
type Delivery struct {
	// ID is the X-GitHub-Delivery header.
	ID string
	// Event is the X-GitHub-Event header.
	Event string
	State State
	// Attempts is how many tries of the work began.
	Attempts int
	// NextAttemptAt is when the next try is due; zero means at once.
	NextAttemptAt time.Time
	// Reason is why the work was given up, or why its last try failed.
	Reason     string
	ReceivedAt time.Time
}

// Received is a verified delivery to record.
type Received struct {
	ID, Event string
	// PayloadSHA256 is the SHA-256 of the signed body; nil when not known.
	PayloadSHA256 []byte
	// Payload is the body, kept while the work is not done so that it can
	// be resumed. Without one the delivery is recorded as done: it is
	// only remembered, for de-duplication.
	Payload []byte
}

// Update is what a try changes: the state, the tries begun, when the next
// is due, and the reason.
type Update struct {
	State         State
	Attempts      int
	NextAttemptAt time.Time
	Reason        string
}

// Check validates an update.
func (u Update) Check() error {
	switch {
	case !u.State.Valid():
		return fmt.Errorf("state %q is not one of accepted, done, given-up", u.State)
	case u.Attempts < 0:
		return fmt.Errorf("attempts must not be negative, got %d", u.Attempts)
	}
	return nil
}

// MaxReason bounds the reason kept (a long error is cut).
const MaxReason = 1024
