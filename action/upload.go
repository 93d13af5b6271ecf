package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// uploadEvery is how often a line tells how an upload goes; one also comes
// at every tenth of an upload of known size.
const uploadEvery = 2 * time.Second

// upload prints the progress of one upload.
type upload struct {
	w     io.Writer
	name  string
	total int64 // -1 when unknown
	now   func() time.Time
	start time.Time

	mu     sync.Mutex // guards sent and tenths, and orders the lines
	sent   int64
	tenths int64

	// stop ends the lines of the ticks.
	stop func()
}

// uploadProgress starts the progress lines of an upload of total bytes
// (-1: unknown) to w: one every uploadEvery and one at every tenth.
// Stop them with stop.
func (p *program) uploadProgress(w io.Writer, name string, total int64) *upload {
	u := &upload{w: w, name: name, total: total, now: p.now, start: p.now()}
	u.stop = p.onTicks(uploadEvery, func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.line()
	})
	return u
}

// reader counts what is read from r.
func (u *upload) reader(r io.Reader) io.Reader { return &countingReader{r: r, u: u} }

func (u *upload) add(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sent += int64(n)
	if u.total > 0 {
		if t := min(u.sent*10/u.total, 10); t > u.tenths {
			u.tenths = t
			u.line()
		}
	}
}

// line prints the state; u.mu must be held.
func (u *upload) line() {
	rate := "-"
	if d := u.now().Sub(u.start); d > 0 {
		rate = formatBytes(int64(float64(u.sent)/d.Seconds())) + "/s"
	}
	if u.total >= 0 {
		pct := int64(100)
		if u.total > 0 {
			pct = u.sent * 100 / u.total
		}
		fmt.Fprintf(u.w, "%s: sent %s of %s (%d%%), %s\n", u.name, formatBytes(u.sent), formatBytes(u.total), pct, rate)
		return
	}
	fmt.Fprintf(u.w, "%s: sent %s, %s\n", u.name, formatBytes(u.sent), rate)
}

type countingReader struct {
	r io.Reader
	u *upload
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.u.add(n)
	}
	return n, err
}

// formatBytes writes n in binary units: 512 B, 1.5 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
