package api

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/imagearchive"
)

// What receiving an archive fails with becomes the answer the API
// documents: 413 naming the limit, 400 naming the body, 507 for the
// server's full disk, 400 for a body cut short.
func TestSpoolError(t *testing.T) {
	const limit = 512 << 20
	tests := []struct {
		err     error
		code    cluster.Code
		message string
	}{
		{imagearchive.ErrTooLarge, cluster.ETOOLARGE, "limit of 536870912 bytes (512 MiB)"},
		{&http.MaxBytesError{Limit: limit + 1}, cluster.ETOOLARGE, "512 MiB"},
		{fmt.Errorf("%w: gzip: unexpected EOF", imagearchive.ErrInvalid), cluster.EINVALID, "body: not a docker save or OCI image archive: gzip"},
		{&os.PathError{Op: "write", Path: "/data/image-spool/image-1.tar", Err: syscall.ENOSPC}, cluster.ENOSPACE, "the server has no room"},
		{io.ErrUnexpectedEOF, cluster.EINVALID, "body: the archive ended"},
	}
	for _, tt := range tests {
		got := spoolError(tt.err, limit)
		if cluster.ErrorCode(got) != tt.code || !strings.Contains(cluster.ErrorMessage(got), tt.message) {
			t.Errorf("spoolError(%v) = %q (%s), want %s containing %q", tt.err, cluster.ErrorMessage(got), cluster.ErrorCode(got), tt.code, tt.message)
		}
	}
}
