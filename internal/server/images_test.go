package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// A local backend without kubelet nodes has nowhere to load images: 501
// before the archive is read; another account's cluster is still a 404
// first, and an unknown id too.
func TestLoadImagesWithoutNodes(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("tenant", smektest.TokenOptions{})
	other := smek.Token("other", smektest.TokenOptions{})
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "3m"}`)
	post := func(id, token string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, smek.URL+"/v1/clusters/"+id+"/images", bytes.NewReader([]byte("not read")))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-tar")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, b := post(c.ClusterID, token)
	problemOf(t, status, b, http.StatusNotImplemented, "not-implemented")
	status, b = post(c.ClusterID, other)
	problemOf(t, status, b, http.StatusNotFound, "not-found")
	status, b = post("c-zzzzzz", token)
	problemOf(t, status, b, http.StatusNotFound, "not-found")
}
