package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/imagearchive"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/wire"
)

// DefaultImageMaxBytes bounds an image archive unless the server is
// configured otherwise: 4 GiB.
const DefaultImageMaxBytes int64 = 4 << 30

// imageMediaTypes are the Content-Types an image archive may come as.
var imageMediaTypes = map[string]bool{"application/x-tar": true, "application/gzip": true, "application/octet-stream": true}

// v1LoadImages is POST /v1/clusters/{id}/images: a docker save stream or
// an OCI layout in a tar, gzip-compressed or not, into the cluster's
// node. The archive is spooled to the server's disk and checked whole
// before the node sees it, so that a bad one imports nothing.
func (s *Server) v1LoadImages(w http.ResponseWriter, r *http.Request, p cluster.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); !imageMediaTypes[mt] {
		s.writeError(w, r, &cluster.Error{Code: cluster.EMEDIATYPE, Field: "Content-Type",
			Message:   fmt.Sprintf("Content-Type must be application/x-tar, application/gzip or application/octet-stream (a docker save or OCI image archive), got %q", short(r.Header.Get("Content-Type"))),
			Supported: []string{"application/x-tar", "application/gzip", "application/octet-stream"}})
		return
	}
	if err := s.life.CheckImageLoad(r.Context(), p, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := s.imageMaxBytes()
	if r.ContentLength > limit {
		s.writeError(w, r, tooLarge(limit))
		return
	}
	body := &uploadReader{r: http.MaxBytesReader(w, r.Body, limit+1), rc: http.NewResponseController(w)}
	spooled, err := imagearchive.Spool(body, s.cfg.ImageSpoolDir, limit)
	if err != nil {
		s.writeError(w, r, spoolError(err, limit))
		return
	}
	defer func() {
		if err := os.Remove(spooled.Path); err != nil {
			s.log.Warn("remove a spooled image archive", logkey.Path, spooled.Path, logkey.Err, err)
		}
	}()
	imgs, err := imagearchive.Inspect(spooled.Path)
	if err != nil {
		s.writeError(w, r, spoolError(err, limit))
		return
	}
	a := cluster.ImageArchive{Path: spooled.Path}
	for _, im := range imgs {
		a.Names = append(a.Names, im.Name)
	}
	loaded, err := s.life.LoadImages(r.Context(), p, id, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := wire.ImageLoad{ClusterID: string(id), Images: make([]wire.Image, 0, len(loaded)), Bytes: spooled.Received}
	for _, im := range loaded {
		out.Images = append(out.Images, wire.Image{Name: im.Name, Digest: im.Digest})
	}
	writeJSON(w, http.StatusOK, wire.MediaJSON, out)
}

// uploadIdle bounds a pause in an image upload. The server's read
// deadline is seconds for a whole request (a JSON body is small); an
// archive of gigabytes takes minutes, so every read moves the deadline on
// instead, and only a client that stops sending is cut off.
const uploadIdle = time.Minute

// uploadReader reads a request body, moving the connection's read
// deadline uploadIdle on before every read.
type uploadReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (u *uploadReader) Read(p []byte) (int, error) {
	// A writer that cannot set deadlines (httptest's recorder) has none
	// to move.
	_ = u.rc.SetReadDeadline(time.Now().Add(uploadIdle))
	return u.r.Read(p)
}

func (s *Server) imageMaxBytes() int64 {
	if s.cfg.ImageMaxBytes > 0 {
		return s.cfg.ImageMaxBytes
	}
	return DefaultImageMaxBytes
}

func tooLarge(limit int64) error {
	return cluster.Errorf(cluster.ETOOLARGE, "body", "the image archive is larger than this server's limit of %d bytes (%d MiB)", limit, limit>>20)
}

// spoolError turns what receiving or checking an archive failed with into
// the application error that answers it.
func spoolError(err error, limit int64) error {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, imagearchive.ErrTooLarge), errors.As(err, &maxErr):
		return tooLarge(limit)
	case errors.Is(err, imagearchive.ErrInvalid):
		return &cluster.Error{Code: cluster.EINVALID, Field: "body", Message: "body: " + err.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return cluster.Errorf(cluster.EINVALID, "body", "body: the archive ended before its end: %v", err)
	case errors.Is(err, syscall.ENOSPC):
		return &cluster.Error{Code: cluster.ENOSPACE, Message: "the server has no room for the image archive: its disk is full", Err: err}
	}
	return err
}
