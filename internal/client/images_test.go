package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/wire"
)

// imageRequest is what the server saw of one LoadImages.
type imageRequest struct {
	method, path, auth, contentType string
	contentLength                   int64
	chunked                         bool
	body                            string
}

func imageServer(t *testing.T, answer func(w http.ResponseWriter)) (*client.Client, *[]imageRequest) {
	t.Helper()
	var seen []imageRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		seen = append(seen, imageRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"),
			r.ContentLength, len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked", string(b)})
		answer(w)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return c, &seen
}

func TestLoadImages(t *testing.T) {
	want := wire.ImageLoad{ClusterID: "c-abc123", Images: []wire.Image{{Name: "docker.io/library/app:dev", Digest: "sha256:" + strings.Repeat("a", 64)}}, Bytes: 5}
	c, seen := imageServer(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", wire.MediaJSON)
		json.NewEncoder(w).Encode(want)
	})
	// A known size goes with its Content-Length, an unknown one chunked.
	got, err := c.LoadImages(t.Context(), "c-abc123", strings.NewReader("tar!!"), 5, client.MediaTar)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != want.ClusterID || len(got.Images) != 1 || got.Images[0] != want.Images[0] || got.Bytes != 5 {
		t.Errorf("answer = %+v, want %+v", got, want)
	}
	if _, err := c.LoadImages(t.Context(), "c-abc123", io.MultiReader(strings.NewReader("gz"), strings.NewReader("ip")), -1, client.MediaGzip); err != nil {
		t.Fatal(err)
	}
	wantSeen := []imageRequest{
		{"POST", "/v1/clusters/c-abc123/images", "Bearer " + token, client.MediaTar, 5, false, "tar!!"},
		{"POST", "/v1/clusters/c-abc123/images", "Bearer " + token, client.MediaGzip, -1, true, "gzip"},
	}
	if len(*seen) != len(wantSeen) {
		t.Fatalf("requests = %+v", *seen)
	}
	for i, w := range wantSeen {
		if (*seen)[i] != w {
			t.Errorf("request %d = %+v, want %+v", i, (*seen)[i], w)
		}
	}
	if _, err := c.LoadImages(t.Context(), "", strings.NewReader("x"), 1, client.MediaTar); err == nil {
		t.Error("an empty cluster id was sent")
	}
	if len(*seen) != 2 {
		t.Errorf("%d requests, want no more", len(*seen))
	}
}

func TestLoadImagesErrors(t *testing.T) {
	for _, tt := range []struct {
		status int
		is     func(error) bool
	}{
		{http.StatusNotFound, client.IsNotFound},
		{http.StatusConflict, client.IsConflict},
		{http.StatusBadRequest, client.IsInvalid},
		{http.StatusRequestEntityTooLarge, client.IsTooLarge},
		{http.StatusUnsupportedMediaType, client.IsUnsupportedMediaType},
		{http.StatusInsufficientStorage, client.IsNoSpace},
		{http.StatusNotImplemented, client.IsNotImplemented},
	} {
		c, _ := imageServer(t, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", wire.MediaProblem)
			w.WriteHeader(tt.status)
			json.NewEncoder(w).Encode(wire.Problem{Status: tt.status, Code: "x", Detail: "the detail"})
		})
		_, err := c.LoadImages(t.Context(), "c-abc123", strings.NewReader("tar"), 3, client.MediaTar)
		if !tt.is(err) || client.StatusCode(err) != tt.status || !strings.Contains(err.Error(), "the detail") {
			t.Errorf("%d: err = %v", tt.status, err)
		}
	}
}
