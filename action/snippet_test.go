package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/ghaction/ghactiontest"
	"github.com/smek/action/internal/release"
)

// snippetStep is one step of a workflow snippet in the docs.
type snippetStep struct {
	name, shell, run string
	env              map[string]string
}

// workflowSnippet reads the YAML block after marker in docs/action.md:
// the job's env and its steps' name, shell, env and run. The snippet is
// plain block YAML, so a line scan does (no YAML library in the module).
func workflowSnippet(t *testing.T, marker string) (jobEnv map[string]string, steps []snippetStep) {
	t.Helper()
	b, err := os.ReadFile("../docs/action.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/action.md has no %q", marker)
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "\n```")
	if !ok || !ok2 {
		t.Fatal("no yaml block after the marker")
	}
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	lines := strings.Split(block, "\n")
	jobEnv = map[string]string{}
	var cur *snippetStep
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		tl := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(tl, "- name: "):
			steps = append(steps, snippetStep{name: strings.TrimPrefix(tl, "- name: "), env: map[string]string{}})
			cur = &steps[len(steps)-1]
		case tl == "env:":
			env := jobEnv
			if cur != nil {
				env = cur.env
			}
			for i+1 < len(lines) && indent(lines[i+1]) > indent(l) {
				i++
				k, v, _ := strings.Cut(strings.TrimSpace(lines[i]), ":")
				env[k] = strings.TrimSpace(v)
			}
		case cur != nil && strings.HasPrefix(tl, "shell: "):
			cur.shell = strings.TrimPrefix(tl, "shell: ")
		case cur != nil && tl == "run: |":
			var body []string
			base := -1
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || indent(lines[i+1]) > indent(l)) {
				i++
				if base < 0 {
					base = indent(lines[i])
				}
				body = append(body, strings.TrimPrefix(lines[i], strings.Repeat(" ", base)))
			}
			cur.run = strings.Join(body, "\n") + "\n"
		case cur != nil && strings.HasPrefix(tl, "run: "):
			cur.run = strings.TrimPrefix(tl, "run: ") + "\n"
		}
	}
	return jobEnv, steps
}

// releaseServer stands in for github.com's release downloads: TLS with a
// certificate for github.com, a redirect to the asset host as GitHub
// makes it, the dist folder's files there. curl reaches it through a
// .curlrc (connect-to, cacert), so the snippet's URL stays as written.
type releaseServer struct {
	*httptest.Server
	dist     string
	version  string
	curlHome string

	mu       sync.Mutex
	tampered map[string]bool // assets served with one byte changed
}

func startReleaseServer(t *testing.T, dist, version string) *releaseServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "snippet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "github.com"},
		DNSNames:  []string{"github.com", "release-assets.githubusercontent.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	rs := &releaseServer{dist: dist, version: version, curlHome: t.TempDir(), tampered: map[string]bool{}}
	rs.Server = httptest.NewUnstartedServer(http.HandlerFunc(rs.serve))
	rs.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	rs.StartTLS()
	t.Cleanup(rs.Close)

	caFile := filepath.Join(rs.curlHome, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := rs.Listener.Addr().String()
	rc := fmt.Sprintf("connect-to = github.com:443:%s\nconnect-to = release-assets.githubusercontent.com:443:%s\ncacert = %s\n", addr, addr, caFile)
	if err := os.WriteFile(filepath.Join(rs.curlHome, ".curlrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	return rs
}

func (rs *releaseServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Host == "github.com":
		name, ok := strings.CutPrefix(r.URL.Path, "/smek/action/releases/download/"+rs.version+"/")
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "https://release-assets.githubusercontent.com/assets/"+name, http.StatusFound)
	case r.Host == "release-assets.githubusercontent.com":
		name := strings.TrimPrefix(r.URL.Path, "/assets/")
		b, err := os.ReadFile(filepath.Join(rs.dist, filepath.Base(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		rs.mu.Lock()
		if rs.tampered[name] {
			b = slices.Clone(b)
			b[len(b)/2] ^= 1
		}
		rs.mu.Unlock()
		w.Write(b)
	default:
		http.Error(w, "unexpected host "+r.Host, http.StatusBadGateway)
	}
}

func (rs *releaseServer) tamper(asset string, on bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.tampered[asset] = on
}

// pathWithout is a PATH holding everything of path but the commands
// named: links in a fresh folder.
func pathWithout(t *testing.T, path string, drop ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(path) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if slices.Contains(drop, e.Name()) {
				continue
			}
			// The first folder that has a command wins, as in PATH.
			os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name()))
		}
	}
	return dir
}

// TestCLIWorkflowSnippet runs the docs' workflow for runners the action
// cannot use, step by step as the runner runs `shell: bash` steps: the
// install step downloads the release's binary and SHA256SUMS (built here
// as the release builds them) from "github.com", checks the binary and
// puts it on PATH; the next steps create a cluster, export it through
// GITHUB_ENV and end it. A binary that does not match SHA256SUMS is never
// installed, with sha256sum (Linux, Windows' Git Bash) or shasum (macOS).
func TestCLIWorkflowSnippet(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the CLI")
	}
	for _, cmd := range []string{"bash", "curl", "sha256sum", "shasum", "grep"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("no %s: %v", cmd, err)
		}
	}
	jobEnv, steps := workflowSnippet(t, "<!-- The steps below are run by action/TestCLIWorkflowSnippet")
	byName := map[string]snippetStep{}
	for _, s := range steps {
		byName[s.name] = s
	}
	install, create, end := byName["Install smek"], byName["Kubernetes cluster"], byName["End the cluster"]
	for _, s := range []snippetStep{install, create, end} {
		if s.shell != "bash" || s.run == "" {
			t.Fatalf("snippet step %+v: want shell: bash and a run script", s)
		}
	}
	if _, ok := jobEnv["SMEK_API_URL"]; !ok || jobEnv["SMEK_TOKEN"] == "" {
		t.Fatalf("the snippet's job env %v lacks SMEK_API_URL and SMEK_TOKEN", jobEnv)
	}
	version, err := release.ParseVersion(install.env["SMEK_VERSION"])
	if err != nil {
		t.Fatalf("the install step's SMEK_VERSION: %v", err)
	}
	arch := map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH]
	if runtime.GOOS != "linux" || arch == "" {
		t.Skipf("runs the Linux binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	platform := release.Platform{OS: "linux", Arch: runtime.GOARCH}

	// The release's assets, built as the release builds them; only this
	// machine's binary, the one the snippet picks here. (The CA bundle
	// goes into the image's files only.)
	dist := filepath.Join(t.TempDir(), "dist")
	rs := startReleaseServer(t, dist, version.String())
	if _, err := release.Build(t.Context(), release.DistOptions{ModuleDir: "..", Out: dist, Version: version, Platforms: []release.Platform{platform}, CABundle: filepath.Join(rs.curlHome, "ca.pem")}); err != nil {
		t.Fatal(err)
	}
	api := clienttest.NewServer(testToken)
	t.Cleanup(api.Close)

	// runStep runs a step as the runner runs `shell: bash`:
	// bash --noprofile --norc -eo pipefail <script>, in the workspace.
	runStep := func(t *testing.T, r *ghactiontest.Runner, st snippetStep, path string, extra map[string]string) (int, string, ghactiontest.Result) {
		t.Helper()
		s := r.HostStep()
		s.Set("PATH", path)
		s.Set("RUNNER_ARCH", arch)
		s.Set("CURL_HOME", rs.curlHome)
		s.Set("SMEK_API_URL", api.URL)
		s.Set("SMEK_TOKEN", testToken)
		for k, v := range st.env {
			s.Set(k, v)
		}
		for k, v := range extra {
			s.Set(k, v)
		}
		script := filepath.Join(r.HostTemp, fmt.Sprintf("step-%d.sh", time.Now().UnixNano()))
		if err := os.WriteFile(script, []byte(st.run), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = r.Workspace
		cmd.Env = s.Environ()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), s.Done()
	}

	for _, tc := range []struct {
		name string
		drop []string // commands missing from PATH
		sum  string   // the tool that checks
	}{
		{"sha256sum", nil, "sha256sum"},
		{"shasum, as on macOS", []string{"sha256sum"}, "shasum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := pathWithout(t, os.Getenv("PATH"), tc.drop...)
			r := ghactiontest.New(t)
			dir := filepath.Join(r.HostTemp, "smek-bin")

			// A binary that does not match SHA256SUMS stops the job before
			// it is installed.
			rs.tamper(platform.Asset(), true)
			code, out, res := runStep(t, r, install, path, nil)
			rs.tamper(platform.Asset(), false)
			if code == 0 || !strings.Contains(out, "FAILED") || len(res.Path) != 0 {
				t.Errorf("tampered binary: exit %d, PATH additions %q; want a failed check and nothing installed\n%s", code, res.Path, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "smek")); !os.IsNotExist(err) {
				t.Errorf("tampered binary installed as smek: %v", err)
			}

			code, out, res = runStep(t, r, install, path, nil)
			if code != 0 {
				t.Fatalf("install step exited %d:\n%s", code, out)
			}
			if !strings.Contains(out, platform.Asset()+": OK") || !strings.Contains(out, "smek "+version.String()) {
				t.Errorf("install step printed %q, want %s's %s: OK and smek %s", out, tc.sum, platform.Asset(), version)
			}
			if !slices.Equal(res.Path, []string{dir}) {
				t.Fatalf("install step added %q to PATH, want %s", res.Path, dir)
			}
			path = dir + string(filepath.ListSeparator) + path

			code, out, res = runStep(t, r, create, path, nil)
			if code != 0 {
				t.Fatalf("cluster step exited %d:\n%s", code, out)
			}
			id, kubeconfig := res.Env["SMEK_CLUSTER_ID"], res.Env["KUBECONFIG"]
			if want := filepath.Join(r.HostTemp, "smek.kubeconfig"); kubeconfig != want || id == "" {
				t.Fatalf("cluster step exported %v, want KUBECONFIG=%s and SMEK_CLUSTER_ID", res.Env, want)
			}
			if fi, err := os.Stat(kubeconfig); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("kubeconfig: %v, %v; want mode 0600", fi, err)
			}
			// The CLI sent the run's metadata, which the SMEK App matches.
			if cl, ok := api.Cluster(id); !ok || cl.Run == nil || cl.Run.Repository != "octo-org/octo-repo" || cl.Run.RunID != 4242 {
				t.Errorf("cluster %s on the server: %+v, want the run's metadata", id, cl)
			}

			code, out, _ = runStep(t, r, end, path, nil)
			if cl, _ := api.Cluster(id); code != 0 || cl.ClusterStatus != "terminated" {
				t.Errorf("end step exited %d, cluster %s is %s; want it terminated\n%s", code, id, cl.ClusterStatus, out)
			}
		})
	}

	t.Run("no binary for the platform", func(t *testing.T) {
		r := ghactiontest.New(t)
		code, out, _ := runStep(t, r, install, os.Getenv("PATH"), map[string]string{"RUNNER_ARCH": "ARM"})
		if code != 1 || !strings.Contains(out, "::error::no smek binary for Linux/ARM") {
			t.Errorf("exit %d, %q; want 1 and an error annotation", code, out)
		}
	})
}
