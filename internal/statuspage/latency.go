package statuspage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/sqlite"
)

// The sparkline's geometry, in SVG user units.
const (
	sparkWidth   = 360
	sparkHeight  = 60
	sparkBuckets = 12 // 5-minute buckets over the hour
)

// claimSummary is the claim latency of the last hour.
type claimSummary struct {
	Count, Warm, Cold int
	// P50, P95 and Max are of the total time from request to kubeconfig,
	// in milliseconds.
	P50, P95, Max int64
	// Line is the polyline of the p95 per 5-minute bucket; Dots are the
	// single claims. Both are in SVG coordinates.
	Line  string
	Dots  []dot
	Width int
	// Height is the drawing height; Scale is the value at the top.
	Height int
	Scale  int64
}

type dot struct {
	X, Y float64
	Warm bool
}

func summarize(samples []sqlite.ClaimSample, now time.Time) claimSummary {
	s := claimSummary{Width: sparkWidth, Height: sparkHeight}
	if len(samples) == 0 {
		return s
	}
	totals := make([]int64, 0, len(samples))
	buckets := make([][]int64, sparkBuckets)
	start := now.Add(-time.Hour)
	for _, c := range samples {
		ms := c.Timings.Total().Milliseconds()
		totals = append(totals, ms)
		if c.Timings.Warm {
			s.Warm++
		} else {
			s.Cold++
		}
		i := int(c.At.Sub(start) * sparkBuckets / time.Hour)
		i = max(0, min(i, sparkBuckets-1))
		buckets[i] = append(buckets[i], ms)
	}
	s.Count = len(totals)
	sort.Slice(totals, func(i, j int) bool { return totals[i] < totals[j] })
	s.P50, s.P95, s.Max = percentile(totals, 0.50), percentile(totals, 0.95), totals[len(totals)-1]
	s.Scale = max(s.Max, 1)

	y := func(ms int64) float64 {
		return float64(sparkHeight) - float64(ms)/float64(s.Scale)*float64(sparkHeight-4) - 2
	}
	var pts []string
	for i, b := range buckets {
		if len(b) == 0 {
			continue
		}
		sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
		x := (float64(i) + 0.5) * sparkWidth / sparkBuckets
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y(percentile(b, 0.95))))
	}
	s.Line = strings.Join(pts, " ")
	for _, c := range samples {
		x := float64(c.At.Sub(start)) / float64(time.Hour) * sparkWidth
		x = max(0, min(x, sparkWidth))
		s.Dots = append(s.Dots, dot{X: x, Y: y(c.Timings.Total().Milliseconds()), Warm: c.Timings.Warm})
	}
	return s
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// formatMS shows milliseconds as "850 ms" or "12.3 s".
func formatMS(ms int64) string {
	if ms < 1000 {
		return strconv.FormatInt(ms, 10) + " ms"
	}
	if ms < 100_000 {
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
	}
	return shortDuration(time.Duration(ms) * time.Millisecond)
}

// formatTime shows a time in UTC to the second; zero times show as "-".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// shortDuration shows d as "42m", "3h05m" or "2d4h".
func shortDuration(d time.Duration) string {
	m := int64(d / time.Minute)
	switch {
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case m < 60:
		return strconv.FormatInt(m, 10) + "m"
	case m < 48*60:
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	default:
		return fmt.Sprintf("%dd%dh", m/(24*60), m%(24*60)/60)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
