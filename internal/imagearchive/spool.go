package imagearchive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned by Spool for an archive over its limit.
var ErrTooLarge = errors.New("image archive over the limit")

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// Spooled is an archive written to disk by Spool.
type Spooled struct {
	// Path is the uncompressed tar; the caller removes it.
	Path string
	// Received is the size of the stream as it came, compressed or not.
	Received int64
}

// Spool writes the archive r to a new file in dir (see Copy). On any
// error nothing is left in dir.
func Spool(r io.Reader, dir string, limit int64) (Spooled, error) {
	f, err := os.CreateTemp(dir, "image-*.tar")
	if err != nil {
		return Spooled{}, err
	}
	s := Spooled{Path: f.Name()}
	s.Received, err = Copy(f, r, limit)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return Spooled{Received: s.Received}, err
	}
	return s, nil
}

// Copy writes the archive r to w, uncompressed when it is
// gzip-compressed (sniffed from its first bytes), and returns how many
// bytes it received. More than limit bytes received, or more than limit
// bytes of tar once uncompressed, is ErrTooLarge; a corrupt gzip stream
// wraps ErrInvalid; an error of r or w (a full disk: syscall.ENOSPC) is
// returned as it is.
func Copy(w io.Writer, r io.Reader, limit int64) (int64, error) {
	counted := &counter{r: io.LimitReader(r, limit+1)}
	err := copyArchive(w, counted, limit)
	if err == nil && counted.n > limit {
		err = ErrTooLarge
	}
	return counted.n, err
}

func copyArchive(w io.Writer, r io.Reader, limit int64) error {
	br := bufio.NewReader(&tagged{r: r})
	head, _ := br.Peek(len(gzipMagic))
	var src io.Reader = br
	if bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return gzipError(err)
		}
		src = zr
	}
	n, err := io.Copy(&tagged{w: w}, io.LimitReader(src, limit+1))
	if err != nil {
		return gzipError(err)
	}
	if n > limit {
		return ErrTooLarge
	}
	return nil
}

// gzipError returns the error of the body or the file as it is, and
// anything else (what the gzip reader found) as an invalid archive.
func gzipError(err error) error {
	if t, ok := errors.AsType[*ioError](err); ok {
		return t.err
	}
	return fmt.Errorf("%w: gzip: %v", ErrInvalid, err)
}

// ioError marks an error of the stream read or the file written, apart
// from the gzip reader's own.
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }

// tagged wraps r's and w's errors in ioError.
type tagged struct {
	r io.Reader
	w io.Writer
}

func (t *tagged) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = &ioError{err}
	}
	return n, err
}

func (t *tagged) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = &ioError{err}
	}
	return n, err
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
