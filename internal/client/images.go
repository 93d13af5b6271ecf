package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/smek/action/internal/wire"
)

// Media types of an image archive (a `docker save` stream or an OCI
// image layout) sent to LoadImages.
const (
	MediaTar  = "application/x-tar"
	MediaGzip = "application/gzip"
)

// LoadImages sends an image archive to cluster id's node, which imports
// the images it holds. archive is the archive, size its length in bytes (-1
// when unknown: it is sent chunked, as a `docker save` stream is), and
// contentType MediaTar or MediaGzip. There is no timeout of its own, so
// that a long upload is not cut: ctx bounds the call.
//
// The server answers 404 for an unknown cluster or another account's, 409
// when the cluster is not running, 400 when the body is not an image
// archive, 413 past its size limit, 415 for another media type, 507 when
// the node has no room and 501 when the cluster's backend cannot import
// images.
func (c *Client) LoadImages(ctx context.Context, id string, archive io.Reader, size int64, contentType string) (*wire.ImageLoad, error) {
	path, err := clusterPath(id, "/images")
	if err != nil {
		return nil, err
	}
	if archive == nil {
		return nil, fmt.Errorf("%s %s: no archive to send", http.MethodPost, path)
	}
	rc, err := c.sendBody(ctx, http.MethodPost, path, nil, wire.MediaJSON, body{r: archive, size: size, contentType: contentType})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out wire.ImageLoad
	if err := json.NewDecoder(io.LimitReader(rc, maxBody)).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s %s: decode answer: %w", http.MethodPost, path, err)
	}
	return &out, nil
}
