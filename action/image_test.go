package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/ghaction/ghactiontest"
	"github.com/smek/action/internal/release"
	"github.com/smek/action/internal/smektest"
)

// podman runs podman as root with storage of its own under the test's
// temporary folder (vfs: no mounts to leave behind), so that the test
// neither needs nor changes any system configuration.
type podman struct {
	t      testing.TB
	bin    string
	global []string
}

// newPodman finds podman, or skips the test without it; with
// SMEK_REQUIRE_PODMAN=1 (.ci/run sets it) a missing podman fails instead.
func newPodman(t testing.TB) *podman {
	t.Helper()
	unusable := func(why string) {
		t.Helper()
		if os.Getenv("SMEK_REQUIRE_PODMAN") == "1" {
			t.Fatalf("SMEK_REQUIRE_PODMAN=1, but %s", why)
		}
		t.Skip(why)
	}
	if runtime.GOOS != "linux" {
		unusable("container actions run on Linux only")
	}
	bin, err := exec.LookPath("podman")
	if err != nil {
		unusable("podman is not installed (apt-get install podman)")
	}
	// The runner runs container actions with a rootful Docker daemon; a
	// rootless podman needs subordinate ids this test does not set up.
	if os.Geteuid() != 0 {
		unusable("the image test runs podman as root, like the runner's Docker daemon")
	}
	dir, err := os.MkdirTemp("", "smek-podman-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &podman{t: t, bin: bin, global: []string{
		"--root", filepath.Join(dir, "storage"),
		"--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}}
	// runc, which Docker on GitHub's runners uses too. crun, podman's
	// first choice when both are installed, fails on hosts with hybrid
	// cgroups ("cgroups in hybrid mode not supported").
	rt := os.Getenv("SMEK_PODMAN_RUNTIME")
	if rt == "" {
		if runc, err := exec.LookPath("runc"); err == nil {
			rt = runc
		}
	}
	if rt != "" {
		p.global = append(p.global, "--runtime", rt)
	}
	return p
}

// cmd is a podman command with the test's storage.
func (p *podman) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, p.bin, append(slices.Clone(p.global), args...)...)
}

// must runs podman and returns its stdout, failing the test on an error.
func (p *podman) must(args ...string) []byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := p.cmd(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// containerRun is one `podman run` as the runner makes it.
type containerRun struct {
	image, entrypoint, workdir string
	env                        map[string]string
	mounts                     []ghactiontest.Mount
	args                       []string
}

// run runs the container to its end and returns its exit status and
// output (stdout and stderr, as the runner's log has both).
//
// The options mirror DockerCommandManager.DockerRun in actions/runner
// (src/Runner.Worker/Container/DockerCommandManager.cs): --workdir, --rm,
// -e for every variable plus GITHUB_ACTIONS=true and CI=true, --entrypoint
// (action.yml's entrypoint, or its post-entrypoint for the post step), -v
// for every mount, then the image. Two differences:
//   - The runner hands values to `docker run -e NAME` through the CLI's
//     environment, to keep them off its command line; here they are
//     NAME=value. The container gets the same environment.
//   - --network host: the runner puts the container on the job's Docker
//     network (github_network_<id>) or Docker's default bridge, from which
//     a real SMEK server is reached by its public name. The test's server
//     listens on 127.0.0.1, which only the host's network namespace reaches.
//
// The --ulimit options are this sandbox's: podman's rootful defaults
// (nofile 1048576, nproc 4194304) are above what the test process may set,
// and runc fails to raise them ("error setting rlimits"). 1024 is the
// usual soft limit and ample for one Go process; Docker on a runner
// passes none.
func (p *podman) run(ctx context.Context, c containerRun) (int, string) {
	p.t.Helper()
	args := []string{"run", "--rm", "--workdir", c.workdir}
	keys := make([]string, 0, len(c.env))
	for k := range c.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-e", k+"="+c.env[k])
	}
	args = append(args, "-e", "GITHUB_ACTIONS=true")
	if _, ok := c.env["CI"]; !ok {
		args = append(args, "-e", "CI=true")
	}
	args = append(args, "--entrypoint", c.entrypoint, "--network", "host",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
	for _, m := range c.mounts {
		args = append(args, "-v", m.Host+":"+m.Container)
	}
	args = append(args, c.image)
	args = append(args, c.args...)
	var out bytes.Buffer
	cmd := p.cmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode(), out.String()
	}
	p.t.Fatalf("podman run %s: %v\n%s", c.image, err, out.String())
	return -1, ""
}

// runsValue reads a key of action.yml's runs block, like `entrypoint`.
func runsValue(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\nruns:\n")
	if !ok {
		t.Fatal("action.yml has no runs block")
	}
	for _, l := range strings.Split(after, "\n") {
		if v, ok := strings.CutPrefix(l, "  "+key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("action.yml's runs has no %s", key)
	return ""
}

// imageFile is one file of the image's layer.
type imageFile struct {
	mode     int64
	typeflag byte
	link     string
	sha256   string
}

// savedImage saves the image as `docker save` does and returns the
// archive's size, the layer's size, its size gzipped (what a registry
// stores and a runner pulls) and its files.
func (p *podman) savedImage(image string) (archive, layer, gzipped int, files map[string]imageFile) {
	p.t.Helper()
	archivePath := filepath.Join(p.t.TempDir(), "image.tar")
	p.must("image", "save", "--format", "docker-archive", "-o", archivePath, image)
	b, err := os.ReadFile(archivePath)
	if err != nil {
		p.t.Fatal(err)
	}
	entries, links := map[string][]byte{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			p.t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			entries[h.Name], _ = io.ReadAll(tr)
		case tar.TypeSymlink:
			// podman links <id>/layer.tar to the layer's blob.
			links[h.Name] = path.Join(path.Dir(h.Name), h.Linkname)
		}
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		p.t.Fatalf("manifest.json: %v, %s", err, entries["manifest.json"])
	}
	if len(manifest[0].Layers) != 1 {
		p.t.Fatalf("the image has layers %q, want one", manifest[0].Layers)
	}
	name := manifest[0].Layers[0]
	if target, ok := links[name]; ok {
		name = target
	}
	data, ok := entries[name]
	if !ok {
		p.t.Fatalf("the archive has no layer %s", manifest[0].Layers[0])
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()

	files = map[string]imageFile{}
	lr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			p.t.Fatalf("layer %s: %v", name, err)
		}
		f := imageFile{mode: h.Mode & 0o7777, typeflag: h.Typeflag, link: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			hash := sha256.New()
			io.Copy(hash, lr)
			f.sha256 = hex.EncodeToString(hash.Sum(nil))
		}
		files[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = f
	}
	return len(b), len(data), gz.Len(), files
}

// TestImage builds the action image from the Dockerfile as the release
// does and runs it as the GitHub runner runs a container action: the
// main step creates a cluster on a real SMEK server, a later step on the
// host and one in a job container use it through the exported KUBECONFIG,
// and the post step ends it.
//
// How the runner does it, from github.com/actions/runner, src/Runner.Worker:
//   - Handlers/ContainerActionHandler.cs: entrypoint for the main step,
//     post-entrypoint for the post step, the same args; HOME =
//     $RUNNER_TEMP/_github_home; mounts of _github_home, _github_workflow,
//     _runner_file_commands and the workspace at /github/home,
//     /github/workflow, /github/file_commands and /github/workspace, which
//     is the working directory; every env value translated to the
//     container's path (ghactiontest.Step.ContainerEnv).
//   - Container/DockerCommandManager.cs, DockerRun: the `docker run`
//     options (see podman.run).
//   - FileCommandManager.cs: the file-command files (set_output_<id>, ...)
//     read after the step.
//   - ContainerOperationProvider.cs, Handlers/StepHost.cs: a job
//     container's mounts, and env translated for its `run:` steps.
func TestImage(t *testing.T) {
	pm := newPodman(t)
	e := startE2E(t, 1)
	kubeBin := smektest.KubeBin(t)
	began := time.Now()

	// The release's dist for this machine, then the Dockerfile's action
	// target. The context holds only dist/, all the target reads; the
	// release builds from the repository with the same dist/ in it.
	ctxDir := t.TempDir()
	asset := release.Platform{OS: "linux", Arch: runtime.GOARCH}.Asset()
	v, _ := release.ParseVersion("v0.0.0-imagetest")
	d, err := release.Build(t.Context(), release.DistOptions{
		ModuleDir: "..", Out: filepath.Join(ctxDir, "dist"), Version: v,
		Platforms: []release.Platform{{OS: "linux", Arch: runtime.GOARCH}}, CABundle: release.DefaultCABundle,
	})
	if err != nil {
		t.Fatal(err)
	}
	built := time.Now()
	const image = "localhost/smek-action:test"
	// --pull=never: the target is FROM scratch and must need no registry.
	pm.must("build", "--pull=never", "--platform", "linux/"+runtime.GOARCH, "--target", "action",
		"-f", "../Dockerfile", "-t", image, ctxDir)
	t.Logf("dist built in %s, image in %s", built.Sub(began).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))

	t.Run("contents", func(t *testing.T) {
		var inspect []struct {
			Architecture string
			Config       struct {
				Entrypoint []string
				Cmd        []string
				User       string
				WorkingDir string
			}
		}
		if err := json.Unmarshal(pm.must("image", "inspect", image), &inspect); err != nil || len(inspect) != 1 {
			t.Fatalf("image inspect: %v", err)
		}
		c := inspect[0].Config
		// The runner always passes --entrypoint and --workdir; no USER
		// keeps it root, as the runner expects of container actions.
		if !slices.Equal(c.Entrypoint, []string{runsValue(t, "entrypoint")}) || len(c.Cmd) != 0 || c.User != "" || c.WorkingDir != "" {
			t.Errorf("image config %+v, want entrypoint [%s] and no cmd, user or workdir", c, runsValue(t, "entrypoint"))
		}
		if inspect[0].Architecture != runtime.GOARCH {
			t.Errorf("image architecture %s, want %s", inspect[0].Architecture, runtime.GOARCH)
		}

		archive, layer, gzipped, files := pm.savedImage(image)
		t.Logf("image size: %d bytes saved (docker-archive), one layer of %d bytes, %d gzipped", archive, layer, gzipped)
		// The image is pulled in every job that uses SMEK.
		if layer > 25<<20 {
			t.Errorf("the image's layer is %d bytes, over 25 MiB", layer)
		}
		var names []string
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		want := []string{"etc", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "smek", "smek-post"}
		if !slices.Equal(names, want) {
			t.Errorf("image files %q, want exactly %q", names, want)
		}
		// The very binary the release attaches and SHA256SUMS names.
		if f := files["smek"]; f.sha256 != d.Sums[asset] || f.mode != 0o755 {
			t.Errorf("image /smek: sha256 %s mode %o, want %s (%s in SHA256SUMS) and 0755", f.sha256, f.mode, d.Sums[asset], asset)
		}
		post := strings.TrimPrefix(runsValue(t, "post-entrypoint"), "/")
		if f := files[post]; f.typeflag != tar.TypeSymlink || f.link != "smek" {
			t.Errorf("image /%s: %+v, want a link to smek (action.yml's post-entrypoint)", post, f)
		}
	})

	r := e.runner
	r.SetEvent("push", []byte(`{"ref":"refs/heads/main","repository":{"full_name":"octo-org/octo-repo","id":74}}`))
	// The runner passes every input: action.yml's defaults, with their
	// expressions evaluated in the job's contexts, then `with:`.
	_, defaults := section(t, "inputs")
	inputs := map[string]string{}
	for k, v := range defaults {
		inputs[k] = evaluateDefault(t, k, v)
	}
	for k, v := range e.inputs() {
		inputs[k] = v
	}
	step := func(r *ghactiontest.Runner, s *ghactiontest.Step, entrypoint string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		code, out := pm.run(ctx, containerRun{image: image, entrypoint: entrypoint, workdir: "/github/workspace",
			env: s.ContainerEnv(), mounts: r.ActionMounts()})
		t.Logf("%s ran in %s (exit %d)", entrypoint, time.Since(start).Round(time.Millisecond), code)
		return code, out
	}

	// The main step.
	main := r.ContainerStep(inputs)
	code, out := step(r, main, runsValue(t, "entrypoint"))
	res := main.Done()
	if code != 0 {
		t.Fatalf("main step exited %d:\n%s", code, out)
	}
	if w := append(annotations(out, "warning"), annotations(out, "error")...); len(w) != 0 {
		t.Errorf("main step annotations: %q", w)
	}
	if !strings.Contains(out, "::add-mask::"+e.token) || strings.Count(out, e.token) != 1 {
		t.Errorf("the token is not masked before use, or printed besides:\n%s", out)
	}
	id := res.Outputs["cluster-id"]
	hostPath := hostKubeconfig(r, id)
	if id == "" || res.Outputs["kubeconfig"] != hostPath || res.Env["KUBECONFIG"] != hostPath {
		t.Fatalf("outputs %v, env %v; want a cluster id and KUBECONFIG=%s, the host's path", res.Outputs, res.Env, hostPath)
	}
	// The post step runs in a new container, so the state names the path
	// in the container.
	if res.State[stateClusterID] != id || res.State[stateKubeconfig] != "/github/home/.kube/smek-"+id+".yaml" {
		t.Errorf("state = %v", res.State)
	}
	if !strings.Contains(res.Summary, id) {
		t.Errorf("job summary lacks the cluster: %q", res.Summary)
	}
	if fi, err := os.Stat(hostPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig on the host: %v, %v; want mode 0600", fi, err)
	}

	// A later `run:` step on the host: plain kubectl, KUBECONFIG from the
	// job's env.
	kubectl := func(env []string, bin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	host := r.HostStep()
	if got, err := kubectl(host.Environ(), filepath.Join(kubeBin, "kubectl"), "get", "ns", "default", "-o", "name"); err != nil || strings.TrimSpace(got) != "namespace/default" {
		t.Errorf("host step: kubectl get ns default = %q, %v", got, err)
	}

	// The same step in a job container (`container:` in the workflow):
	// the runner translates KUBECONFIG to /github/home/..., which it
	// mounts there too.
	t.Run("job container", func(t *testing.T) {
		kctx := t.TempDir()
		if err := os.Link(filepath.Join(kubeBin, "kubectl"), filepath.Join(kctx, "kubectl")); err != nil {
			b, err := os.ReadFile(filepath.Join(kubeBin, "kubectl"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(kctx, "kubectl"), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(kctx, "Containerfile"), []byte("FROM scratch\nCOPY kubectl /kubectl\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		pm.must("build", "--pull=never", "-t", "localhost/kubectl:test", kctx)
		env := host.JobContainerEnv()
		env["HOME"] = "/github/home" // the job container's, set when the runner creates it
		if env["KUBECONFIG"] != "/github/home/.kube/smek-"+id+".yaml" {
			t.Errorf("KUBECONFIG in the job container = %q", env["KUBECONFIG"])
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		code, out := pm.run(ctx, containerRun{image: "localhost/kubectl:test", entrypoint: "/kubectl", workdir: "/__w/octo-repo/octo-repo",
			env: env, mounts: r.JobContainerMounts(), args: []string{"get", "ns", "default", "-o", "name"}})
		if code != 0 || strings.TrimSpace(out) != "namespace/default" {
			t.Errorf("job container step: kubectl get ns default = %d, %q", code, out)
		}
	})
	host.Done()

	// The post step: post-entrypoint, the main step's state as STATE_*.
	post := r.PostStep(inputs)
	code, out = step(r, post, runsValue(t, "post-entrypoint"))
	post.Done()
	if code != 0 || !strings.Contains(out, "Terminated cluster "+id) {
		t.Errorf("post step exited %d:\n%s", code, out)
	}
	if w := annotations(out, "warning"); len(w) != 0 {
		t.Errorf("post step warnings: %q", w)
	}
	c, err := client.New(e.srv.URL, e.token)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Get(t.Context(), id)
	if err != nil && !client.IsNotFound(err) {
		t.Fatal(err)
	}
	if err == nil && cl.ClusterStatus != "terminated" && cl.ClusterStatus != "terminating" {
		t.Errorf("after the post step cluster %s is %s, want it gone", id, cl.ClusterStatus)
	}
	if _, err := os.Stat(hostPath); !os.IsNotExist(err) {
		t.Errorf("kubeconfig left on the host: %v", err)
	}

	// A bad input fails the step: exit status 1, one ::error::, no cluster.
	bad := ghactiontest.New(t)
	inputs["minutes-to-live"] = "abc"
	code, out = step(bad, bad.ContainerStep(inputs), runsValue(t, "entrypoint"))
	if errs := annotations(out, "error"); code != 1 || len(errs) != 1 || !strings.Contains(errs[0], "minutes-to-live") {
		t.Errorf("bad input: exit %d, errors %q; want 1 and one about minutes-to-live\n%s", code, errs, out)
	}
	t.Logf("TestImage took %s", time.Since(began).Round(time.Millisecond))
}

// jobContext is what this simulated job's `job` context holds, for the
// expressions in action.yml's input defaults. The runner evaluates them
// for each step of the action, the post step included: this job succeeds.
var jobContext = map[string]string{"job.check_run_id": "4242", "job.status": "success"}

// evaluateDefault evaluates the ${{ ... }} expressions of an input's
// default as the runner does before it starts the container. An
// expression the simulation does not know fails the test, so that a new
// one is given a value here rather than passed on verbatim.
func evaluateDefault(t *testing.T, input, v string) string {
	t.Helper()
	for {
		start := strings.Index(v, "${{")
		if start < 0 {
			return v
		}
		end := strings.Index(v[start:], "}}")
		if end < 0 {
			t.Fatalf("input %s: unterminated expression in its default %q", input, v)
		}
		expr := strings.TrimSpace(v[start+3 : start+end])
		val, ok := jobContext[expr]
		if !ok {
			t.Fatalf("input %s: the simulated runner cannot evaluate ${{ %s }} in its default; give it a value in jobContext", input, expr)
		}
		v = v[:start] + val + v[start+end+2:]
	}
}
