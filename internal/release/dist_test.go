package release

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testCABundle writes a PEM file with one self-signed CA certificate.
func testCABundle(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dist test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the CLI twice")
	}
	v, _ := ParseVersion("v1.2.3-test.1")
	linux := Platform{"linux", runtime.GOARCH}
	windows := Platform{"windows", "amd64"}
	out := filepath.Join(t.TempDir(), "dist")
	ca := testCABundle(t)
	d, err := Build(t.Context(), DistOptions{ModuleDir: "../..", Out: out, Version: v, Platforms: []Platform{linux, windows}, CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Sums) != 2 || d.Sums[linux.Asset()] == "" || d.Sums["smek-windows-amd64.exe"] == "" {
		t.Errorf("sums = %v, want %s and smek-windows-amd64.exe", d.Sums, linux.Asset())
	}

	// SHA256SUMS is what sha256sum writes and reads.
	sums, err := os.ReadFile(filepath.Join(out, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(sums)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], "  "+linux.Asset()) {
		t.Errorf("SHA256SUMS = %q", sums)
	}
	if sha256sum, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha256sum, "--strict", "-c", SumsFile)
		cmd.Dir = out
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, b)
		}
	}

	// The image root carries the Linux asset itself, its post-step link
	// and the CA bundle; Windows has none.
	root := filepath.Join(out, linux.ImageRoot())
	bin, _ := os.ReadFile(filepath.Join(out, linux.Asset()))
	inImage, err := os.ReadFile(filepath.Join(root, "smek"))
	if err != nil || !bytes.Equal(bin, inImage) {
		t.Errorf("image /smek differs from %s (%v)", linux.Asset(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "smek")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("image /smek: %v, %v; want mode 0755", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(root, "smek-post")); err != nil || target != "smek" {
		t.Errorf("image /smek-post -> %q, %v; want a link to smek", target, err)
	}
	want, _ := os.ReadFile(ca)
	if got, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("image CA bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, windows.ImageRoot())); !os.IsNotExist(err) {
		t.Errorf("windows has an image root: %v", err)
	}

	// The version is stamped in.
	if runtime.GOOS == "linux" {
		got, err := exec.Command(filepath.Join(out, linux.Asset()), "--version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != "smek v1.2.3-test.1" {
			t.Errorf("smek --version = %q, %v; want smek v1.2.3-test.1", got, err)
		}
	}
}

func TestBuildRefusesAnEmptyCABundle(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	v, _ := ParseVersion("v1.0.0")
	_, err := Build(t.Context(), DistOptions{ModuleDir: "../..", Out: t.TempDir(), Version: v, Platforms: []Platform{{"linux", "amd64"}}, CABundle: empty})
	if err == nil {
		t.Error("Build with an empty CA bundle: no error")
	}
}
