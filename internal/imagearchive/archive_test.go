package imagearchive_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/smek/action/internal/imagearchive"
	"github.com/smek/action/internal/imagearchive/archivetest"
)

func TestRead(t *testing.T) {
	img := archivetest.Image(t, nil, map[string]string{"hello.txt": "hello\n"})
	other := archivetest.Image(t, nil, map[string]string{"other.txt": "other\n"})
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	docker := archivetest.DockerSave(t, map[string]v1Image{"app:dev": img, "app:latest": img, "registry.example:5000/team/tool:1": other})
	oci := archivetest.OCI(t, "docker.io/library/app:dev", img)
	layer := func(name string) bool { return strings.HasSuffix(name, ".tar.gz") }
	tests := []struct {
		name    string
		archive []byte
		want    []imagearchive.Image
		wantErr string // "" for a valid archive
	}{
		{"docker save, several tags", docker, []imagearchive.Image{
			{Name: "docker.io/library/app:dev"}, {Name: "docker.io/library/app:latest"}, {Name: "registry.example:5000/team/tool:1"},
		}, ""},
		{"OCI layout", oci, []imagearchive.Image{{Name: "docker.io/library/app:dev", Digest: digest.String()}}, ""},
		{"empty", nil, nil, "unrecognized image format"},
		{"not a tar", []byte("hello, this is not a tar archive at all, and it is long enough to fill a header block of five hundred and twelve bytes" + strings.Repeat(".", 512)), nil, "read tar"},
		{"truncated", docker[:len(docker)/2+100], nil, "unexpected EOF"},
		{"missing layer", archivetest.Edit(t, docker, func(n string, b []byte) ([]byte, bool) { return b, !layer(n) }), nil, "failed to resolve layers: layer"},
		{"missing config", archivetest.Edit(t, docker, func(n string, b []byte) ([]byte, bool) { return b, !strings.HasPrefix(n, "sha256:") }), nil, "image config"},
		{"bad manifest.json", archivetest.Edit(t, docker, func(n string, b []byte) ([]byte, bool) {
			if n == "manifest.json" {
				return []byte("[{"), true
			}
			return b, true
		}), nil, `untar manifest "manifest.json"`},
		{"no tags", archivetest.Edit(t, docker, func(n string, b []byte) ([]byte, bool) {
			if n == "manifest.json" {
				return bytes.ReplaceAll(b, []byte(`"RepoTags"`), []byte(`"Tags"`)), true
			}
			return b, true
		}), nil, "no RepoTags"},
		{"OCI missing blob", archivetest.Edit(t, oci, func(n string, b []byte) ([]byte, bool) {
			return b, !strings.HasPrefix(n, "blobs/") || len(b) > 2000 || !bytes.Contains(b, []byte("layers"))
		}), nil, "content digest sha256:"},
		{"OCI blob not matching its digest", archivetest.Edit(t, oci, func(n string, b []byte) ([]byte, bool) {
			if strings.HasPrefix(n, "blobs/") && bytes.Contains(b, []byte(`"rootfs"`)) {
				return bytes.Replace(b, []byte(`"rootfs"`), []byte(`"rootfS"`), 1), true
			}
			return b, true
		}), nil, "the blob's content has digest"},
		{"OCI without index.json", archivetest.Edit(t, oci, func(n string, b []byte) ([]byte, bool) { return b, n != "index.json" }), nil, "missing index.json"},
		{"OCI layout version", archivetest.Edit(t, oci, func(n string, b []byte) ([]byte, bool) {
			if n == "oci-layout" {
				return []byte(`{"imageLayoutVersion":"2.0.0"}`), true
			}
			return b, true
		}), nil, "unsupported OCI version 2.0.0"},
		{"OCI short name", archivetest.OCI(t, "app:dev", img), nil, `name it "docker.io/library/app:dev"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imagearchive.Read(bytes.NewReader(tt.archive))
			if tt.wantErr != "" {
				if !errors.Is(err, imagearchive.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an invalid archive error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				want := tt.want[i]
				if want.Digest == "" {
					// docker save: the manifest containerd writes on
					// import, checked against ctr on a real node
					// (internal/server's node test).
					want.Digest = got[i].Digest
					if !strings.HasPrefix(want.Digest, "sha256:") || len(want.Digest) != 71 {
						t.Errorf("image %d: digest %q, want sha256:HEX", i, want.Digest)
					}
				}
				if got[i] != want {
					t.Errorf("image %d: got %v, want %v", i, got[i], want)
				}
			}
			if tt.name == "docker save, several tags" && (got[0].Digest != got[1].Digest || got[0].Digest == got[2].Digest) {
				t.Errorf("digests %v: want one for the tags of one image, another for the other image", got)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app:dev", "docker.io/library/app:dev"},
		{"app", "docker.io/library/app:latest"},
		{"team/app:1", "docker.io/team/app:1"},
		{"index.docker.io/library/app:1", "docker.io/library/app:1"},
		{"localhost/app:1", "localhost/app:1"},
		{"registry.example:5000/app", "registry.example:5000/app:latest"},
		{"ghcr.io/o/app@sha256:" + strings.Repeat("a", 64), "ghcr.io/o/app@sha256:" + strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		if got, err := imagearchive.Normalize(tt.in); err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "App:dev", "app:dev:dev", "a b"} {
		if got, err := imagearchive.Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestSpool(t *testing.T) {
	img := archivetest.Image(t, nil, map[string]string{"hello.txt": "hello\n"})
	plain := archivetest.DockerSave(t, map[string]v1Image{"app:dev": img})
	gz := archivetest.Gzip(t, plain)
	for _, tt := range []struct {
		name string
		in   []byte
	}{{"tar", plain}, {"gzip", gz}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := imagearchive.Spool(bytes.NewReader(tt.in), dir, int64(len(plain)))
			if err != nil {
				t.Fatal(err)
			}
			if s.Received != int64(len(tt.in)) {
				t.Errorf("received %d, want %d", s.Received, len(tt.in))
			}
			got, err := os.ReadFile(s.Path)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("spooled %d bytes (%v), want the %d bytes of the tar", len(got), err, len(plain))
			}
		})
	}
	t.Run("errors leave nothing", func(t *testing.T) {
		dir := t.TempDir()
		cases := []struct {
			name string
			in   []byte
			max  int64
			want error
		}{
			{"over the limit", plain, int64(len(plain)) - 1, imagearchive.ErrTooLarge},
			{"over the limit once uncompressed", gz, int64(len(gz)), imagearchive.ErrTooLarge},
			{"truncated gzip", gz[:len(gz)/2], 1 << 30, imagearchive.ErrInvalid},
			{"corrupt gzip", append(append([]byte{}, gz[:20]...), bytes.Repeat([]byte{0xff}, 200)...), 1 << 30, imagearchive.ErrInvalid},
		}
		for _, c := range cases {
			if _, err := imagearchive.Spool(bytes.NewReader(c.in), dir, c.max); !errors.Is(err, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			}
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("left %d files behind", len(left))
		}
	})
	t.Run("full disk", func(t *testing.T) {
		_, err := imagearchive.Copy(fullDisk{}, bytes.NewReader(plain), 1<<30)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("got %v, want ENOSPC as it is", err)
		}
	})
}

// fullDisk is a file on a full disk.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "spool", Err: syscall.ENOSPC}
}
