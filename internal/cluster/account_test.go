package cluster

import (
	"net/http"
	"strings"
	"testing"
)

func TestCodesHaveStatuses(t *testing.T) {
	for _, c := range Codes() {
		got := HTTPStatus(c)
		if (got == http.StatusInternalServerError) != (c == EINTERNAL) {
			t.Errorf("HTTPStatus(%s) = %d", c, got)
		}
	}
	if got := HTTPStatus(ESUSPENDED); got != http.StatusForbidden {
		t.Errorf("suspended answers %d, want 403", got)
	}
}

func TestLimitErrors(t *testing.T) {
	tests := []struct {
		err        *Error
		code       Code
		wantInText []string
	}{
		{SuspendedError("ci"), ESUSPENDED, []string{`"ci"`, "suspended", "max-clusters is 0"}},
		{LimitError(1), ELIMIT, []string{"limit of 1 cluster running", "max-clusters"}},
		{LimitError(3), ELIMIT, []string{"limit of 3 clusters running", "max-clusters"}},
		{StoppedLimitError(0), ELIMIT, []string{"may not keep stopped clusters", "max-stopped-clusters is 0", "force-terminate"}},
		{StoppedLimitError(5), ELIMIT, []string{"limit of 5 stopped clusters", "max-stopped-clusters", "force-terminate"}},
	}
	for _, tt := range tests {
		if tt.err.Code != tt.code {
			t.Errorf("%q: code %s, want %s", tt.err.Message, tt.err.Code, tt.code)
		}
		for _, want := range tt.wantInText {
			if !strings.Contains(tt.err.Message, want) {
				t.Errorf("%q does not say %q", tt.err.Message, want)
			}
		}
	}
}
