package cluster

import "unicode/utf8"

// Truncate shortens s to at most n bytes, cut on a character boundary,
// and marks the cut with "…". It keeps quoted user input short in
// messages, so one long value cannot flood an error, a log line or a
// comment.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
