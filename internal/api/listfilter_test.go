package api

import (
	"net/url"
	"testing"

	"github.com/smek/action/internal/cluster"
)

func TestListFilterRepositoryOwner(t *testing.T) {
	for owner, ok := range map[string]bool{"octocat": true, "Octo-Org": true, "octo_cat": true, "a/b": false, "octo%": false, "": true} {
		f, err := listFilter(url.Values{"repository-owner": {owner}})
		switch {
		case ok && (err != nil || f.RepositoryOwner != owner):
			t.Errorf("%q: got %q, %v; want it kept", owner, f.RepositoryOwner, err)
		case !ok && cluster.ErrorCode(err) != cluster.EINVALID:
			t.Errorf("%q: got %v, want EINVALID", owner, err)
		}
	}
}
