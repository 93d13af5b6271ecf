package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// MaxMinutes bounds a trace row's cluster lifetime (a week).
const MaxMinutes = 7 * 24 * 60

// MaxQueued bounds how long before its create a job may have been queued
// (GitHub drops a job queued longer than a day).
const MaxQueued = 24 * time.Hour

// Row is one create of a demand trace.
type Row struct {
	// Line is the row's line in the CSV file (the header is line 1).
	Line int
	// CreatedAt is when the create arrives.
	CreatedAt time.Time
	// Lifetime is how long the cluster lives once it has its member.
	Lifetime time.Duration
	// Flavor is the row's flavor; HasFlavor is false when the trace has
	// none for it (the simulation's default flavor is used).
	Flavor    cluster.Flavor
	HasFlavor bool
	// Repository, Workflow and Job name the CI job that asked, when the
	// trace knows them.
	Repository, Workflow, Job string
	// QueuedAt is when that job was queued (zero: unknown); never after
	// CreatedAt.
	QueuedAt time.Time
}

// JobKey is what pre-warming learns from: the repository, workflow and job
// name, as the GitHub App sees them in a workflow_job delivery. It is ""
// when the row names no repository or job.
func (r Row) JobKey() string {
	if r.Repository == "" || r.Job == "" {
		return ""
	}
	return r.Repository + "\x00" + r.Workflow + "\x00" + r.Job
}

// Trace columns.
const (
	colCreatedAt  = "created_at"
	colMinutes    = "minutes"
	colFlavor     = "flavor"
	colRepository = "repository"
	colWorkflow   = "workflow"
	colJob        = "job"
	colQueuedAt   = "queued_at"
)

var knownColumns = []string{colCreatedAt, colMinutes, colFlavor, colRepository, colWorkflow, colJob, colQueuedAt}

// maxTextField bounds repository, workflow and job names.
const maxTextField = 512

// ParseTrace reads a demand trace: CSV with a header naming the columns,
// in any order: created_at (RFC 3339) and minutes (the cluster's
// lifetime, > 0, fractions allowed) are required; flavor (e.g.
// 1.36.3/1-mid/baseline), repository, workflow, job and queued_at
// (RFC 3339, not after created_at) are optional. Empty optional cells
// are allowed. An unknown or repeated column, and every bad cell, is an
// error naming its line and column.
func ParseTrace(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("trace: empty: want a header line, e.g. created_at,minutes")
	}
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.TrimSpace(h)
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		known := false
		for _, k := range knownColumns {
			known = known || k == name
		}
		if !known {
			return nil, fmt.Errorf("trace line 1: unknown column %q (known: %s)", cluster.Truncate(name, 40), strings.Join(knownColumns, ", "))
		}
		if _, dup := col[name]; dup {
			return nil, fmt.Errorf("trace line 1: column %q twice", name)
		}
		col[name] = i
	}
	for _, req := range []string{colCreatedAt, colMinutes} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("trace line 1: no column %q (required: %s, %s)", req, colCreatedAt, colMinutes)
		}
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		line, _ := cr.FieldPos(0)
		row, err := parseRow(rec, col, line)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("trace: no rows after the header")
	}
	if err := checkSpan(rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// MaxSpan bounds the time a trace covers, from its first queued_at or
// created_at to its last created_at.
const MaxSpan = 366 * 24 * time.Hour

// checkSpan refuses a trace that covers more than MaxSpan.
func checkSpan(rows []Row) error {
	if len(rows) == 0 {
		return errors.New("trace: no rows")
	}
	first, last := rows[0], rows[0]
	for _, r := range rows {
		if r.CreatedAt.Before(first.CreatedAt) {
			first = r
		}
		if r.CreatedAt.After(last.CreatedAt) {
			last = r
		}
	}
	if last.CreatedAt.Sub(first.CreatedAt) > MaxSpan {
		return fmt.Errorf("trace: lines %d to %d span %s, more than the %d days a simulation covers", first.Line, last.Line,
			last.CreatedAt.Sub(first.CreatedAt).Round(time.Hour), MaxSpan/(24*time.Hour))
	}
	return nil
}

func parseRow(rec []string, col map[string]int, line int) (Row, error) {
	row := Row{Line: line}
	cell := func(name string) (string, bool) {
		i, ok := col[name]
		if !ok {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("trace line %d, column %s: %s", line, name, fmt.Sprintf(format, args...))
	}
	s, _ := cell(colCreatedAt)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return row, bad(colCreatedAt, "%q is not an RFC 3339 time like 2026-03-02T09:15:00Z", cluster.Truncate(s, 40))
	}
	row.CreatedAt = t
	s, _ = cell(colMinutes)
	m, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(m) || m <= 0 || m > MaxMinutes {
		return row, bad(colMinutes, "%q is not a number of minutes above 0 and at most %d", cluster.Truncate(s, 40), MaxMinutes)
	}
	row.Lifetime = time.Duration(m * float64(time.Minute))
	if row.Lifetime <= 0 {
		return row, bad(colMinutes, "%q is shorter than a nanosecond", cluster.Truncate(s, 40))
	}
	if s, ok := cell(colFlavor); ok && s != "" {
		f, err := cluster.ParseFlavor(s)
		if err != nil {
			return row, bad(colFlavor, "%v", err)
		}
		row.Flavor, row.HasFlavor = f, true
	}
	for _, c := range []struct {
		name string
		to   *string
	}{{colRepository, &row.Repository}, {colWorkflow, &row.Workflow}, {colJob, &row.Job}} {
		s, _ := cell(c.name)
		if len(s) > maxTextField {
			return row, bad(c.name, "longer than %d bytes", maxTextField)
		}
		*c.to = s
	}
	if s, ok := cell(colQueuedAt); ok && s != "" {
		q, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return row, bad(colQueuedAt, "%q is not an RFC 3339 time like 2026-03-02T09:14:20Z", cluster.Truncate(s, 40))
		}
		if row.CreatedAt.Sub(q) > MaxQueued {
			return row, bad(colQueuedAt, "%s is more than %s before created_at %s", s, MaxQueued, row.CreatedAt.Format(time.RFC3339))
		}
		if q.After(row.CreatedAt) {
			return row, bad(colQueuedAt, "%s is after created_at %s: a job is queued before it asks for a cluster", s, row.CreatedAt.Format(time.RFC3339))
		}
		row.QueuedAt = q
	}
	return row, nil
}
