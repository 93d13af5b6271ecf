package cluster

import (
	"net/http"
	"testing"
)

func TestCodeForStatus(t *testing.T) {
	tests := []struct {
		status int
		want   Code
	}{
		{http.StatusBadRequest, EINVALID},
		{http.StatusForbidden, EFORBIDDEN}, // not ESUSPENDED: the first code wins
		{http.StatusNotFound, ENOTFOUND},
		{http.StatusServiceUnavailable, EUNAVAILABLE},
		{http.StatusInternalServerError, ""}, // a proxy's 500 need not be ours
		{http.StatusBadGateway, ""},
	}
	for _, tt := range tests {
		if got := CodeForStatus(tt.status); got != tt.want {
			t.Errorf("CodeForStatus(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
	for _, c := range Codes() {
		if got := CodeForStatus(HTTPStatus(c)); c != EINTERNAL && HTTPStatus(got) != HTTPStatus(c) {
			t.Errorf("CodeForStatus(HTTPStatus(%s)) = %q: another status", c, got)
		}
	}
}
