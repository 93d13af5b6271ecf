package diagnostics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCapBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100))
	}))
	defer srv.Close()
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{100, true}, {99, false}} {
		c := &http.Client{Transport: capBodies(tc.limit)(http.DefaultTransport)}
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.ok && (err != nil || len(b) != 100) {
			t.Errorf("cap %d: %d bytes, %v", tc.limit, len(b), err)
		}
		if !tc.ok && !errors.Is(err, errTooLarge) {
			t.Errorf("cap %d: %d bytes, %v; want errTooLarge", tc.limit, len(b), err)
		}
	}
}

func TestListPages(t *testing.T) {
	// A server of 7 objects in pages as large as asked.
	page := func(o metav1.ListOptions) ([]int, string, error) {
		start := 0
		if o.Continue != "" {
			start = int(o.Continue[0] - '0')
		}
		end := min(start+int(o.Limit), 7)
		var items []int
		for i := start; i < end; i++ {
			items = append(items, i)
		}
		next := ""
		if end < 7 {
			next = string(rune('0' + end))
		}
		return items, next, nil
	}
	for _, tc := range []struct {
		max       int
		want      int
		truncated bool
	}{{3, 3, true}, {7, 7, false}, {100, 7, false}} {
		got, more, err := listPages(context.Background(), tc.max, page)
		if err != nil || len(got) != tc.want || more != tc.truncated {
			t.Errorf("max %d: got %d objects, more %t, %v; want %d, %t", tc.max, len(got), more, err, tc.want, tc.truncated)
		}
	}
}
