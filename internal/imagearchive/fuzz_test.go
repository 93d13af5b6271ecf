package imagearchive_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/smek/action/internal/imagearchive"
	"github.com/smek/action/internal/imagearchive/archivetest"
)

// FuzzRead feeds Read mutated archives: it must never panic, and every
// archive it refuses must be refused as invalid, never with another error.
func FuzzRead(f *testing.F) {
	img := archivetest.Image(f, nil, map[string]string{"a": "b"})
	f.Add(archivetest.DockerSave(f, map[string]v1Image{"app:dev": img}))
	f.Add(archivetest.OCI(f, "docker.io/library/app:dev", img))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		imgs, err := imagearchive.Read(bytes.NewReader(b))
		if err != nil && !errors.Is(err, imagearchive.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
		if err == nil && len(imgs) == 0 {
			t.Fatal("an archive with no image was accepted")
		}
	})
}
