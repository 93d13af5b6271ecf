package main

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smek/action/internal/wire"
)

// defaultWait is the wait budget when none is given; the server's default
// too.
const defaultWait = 5 * time.Minute

// waitGrace is how much longer than the wait budget the client waits for
// the server's answer (its 503 included) before giving up itself.
const waitGrace = 30 * time.Second

// createInputs are the create parameters as text, from action inputs or
// CLI flags. Empty means "the server's default".
type createInputs struct {
	K8sVersion        string
	MinutesToLive     string
	ClusterSize       string
	EnablePrivileged  string
	KeepCluster       string
	NotificationEmail string
	Wait              string
}

// fieldError is a malformed input; Field is the input's name.
type fieldError struct {
	Field, Value, Problem string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%s: %q %s", e.Field, e.Value, e.Problem)
}

// request turns the inputs into a create request and the wait budget.
// keepDefault is keep-cluster when the input is empty: false for the
// action (its post step cleans up), the server's default for the CLI (nil).
func (in createInputs) request(keepDefault *bool) (wire.CreateRequest, time.Duration, error) {
	var req wire.CreateRequest
	if v := strings.TrimSpace(in.K8sVersion); v != "" {
		req.K8sVersion = &v
	}
	if v := strings.TrimSpace(in.ClusterSize); v != "" {
		req.ClusterSize = &v
	}
	if v := strings.TrimSpace(in.MinutesToLive); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, 0, &fieldError{"minutes-to-live", v, "is not a whole number of minutes"}
		}
		if n < 1 {
			return req, 0, &fieldError{"minutes-to-live", v, "must be at least 1"}
		}
		req.MinutesToLive = &n
	}
	var err error
	if req.EnablePrivileged, err = parseBool("enable-privileged", in.EnablePrivileged, nil); err != nil {
		return req, 0, err
	}
	if req.KeepCluster, err = parseBool("keep-cluster", in.KeepCluster, keepDefault); err != nil {
		return req, 0, err
	}
	if v := strings.TrimSpace(in.NotificationEmail); v != "" {
		if a, err := mail.ParseAddress(v); err != nil || a.Name != "" {
			return req, 0, &fieldError{"notification-email", v, "is not an email address"}
		}
		req.NotificationEmail = &v
	}
	wait := defaultWait
	if v := strings.TrimSpace(in.Wait); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			if _, nerr := strconv.Atoi(v); nerr == nil {
				return req, 0, &fieldError{"wait", v, "has no unit; write it like 90s or 5m"}
			}
			return req, 0, &fieldError{"wait", v, "is not a duration like 90s or 5m"}
		}
		if d < 0 {
			return req, 0, &fieldError{"wait", v, "must not be negative"}
		}
		wait = d
	}
	w := wait.String()
	req.Wait = &w
	return req, wait, nil
}

// parseBool reads a boolean the way actions/toolkit's getBooleanInput
// does (true, True, TRUE, false, False, FALSE). Empty gives def.
func parseBool(field, v string, def *bool) (*bool, error) {
	switch strings.TrimSpace(v) {
	case "":
		return def, nil
	case "true", "True", "TRUE":
		b := true
		return &b, nil
	case "false", "False", "FALSE":
		b := false
		return &b, nil
	}
	return nil, &fieldError{field, v, "is not a boolean (true or false)"}
}

// maxKeepFor bounds keep-on-failure far beyond any account's maximum (the
// server shortens a keep to that), so that rounding cannot overflow.
const maxKeepFor = 366 * 24 * time.Hour

// parseKeepFor reads keep-on-failure: how long a failed job's cluster is
// kept for debugging, as a duration of whole minutes (rounded up). Empty,
// "0" and "false" turn it off.
func parseKeepFor(field, v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "", "0", "false", "False", "FALSE":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if _, nerr := strconv.Atoi(v); nerr == nil {
			return 0, &fieldError{field, v, "has no unit; write it like 30m or 2h"}
		}
		return 0, &fieldError{field, v, "is not a duration like 30m or 2h"}
	}
	if d < 0 {
		return 0, &fieldError{field, v, "must not be negative"}
	}
	if d > maxKeepFor {
		return 0, &fieldError{field, v, "is longer than a year"}
	}
	return (d + time.Minute - 1).Truncate(time.Minute), nil
}

// Values of the diagnostics input.
const (
	diagnosticsOnFailure = "on-failure"
	diagnosticsAlways    = "always"
	diagnosticsNever     = "never"
)

// parseDiagnostics reads the diagnostics input; empty is on-failure.
func parseDiagnostics(field, v string) (string, error) {
	switch v = strings.TrimSpace(v); v {
	case "":
		return diagnosticsOnFailure, nil
	case diagnosticsOnFailure, diagnosticsAlways, diagnosticsNever:
		return v, nil
	}
	return "", &fieldError{field, v, "is not on-failure, always or never"}
}

// jobFailed tells a failed job from its status: job.status in GitHub
// Actions (success, failure, cancelled), CI_JOB_STATUS in GitLab CI
// (success, failed, canceled), or a shell's exit status ($?). A
// cancelled job did not fail: nobody waits for its cluster.
func jobFailed(field, v string) (bool, error) {
	switch v = strings.TrimSpace(v); v {
	case "failure", "failed":
		return true, nil
	case "success", "cancelled", "canceled":
		return false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		return false, &fieldError{field, v, "is not a job status (success, failure, failed, cancelled, canceled) or an exit status (0-255)"}
	}
	return n != 0, nil
}

// maxKeepReason is the server's bound on a keep's reason, in bytes.
const maxKeepReason = 200

// keepReason is the reason a failed job gives for keeping its cluster:
// "job NAME failed", one line within the server's bound. Job names are
// the CI's (GitLab allows 255 characters), so a long one is cut, at a
// character's edge.
func keepReason(job string) string {
	job = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(job, ""), unicode.IsControl), " ")
	if job == "" {
		return "the job failed"
	}
	const frame = len("job ") + len(" failed")
	if len(job) > maxKeepReason-frame {
		cut := maxKeepReason - frame - len("…")
		for cut > 0 && !utf8.RuneStart(job[cut]) {
			cut--
		}
		job = job[:cut] + "…"
	}
	return "job " + job + " failed"
}
