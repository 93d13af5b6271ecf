package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/smek/action/internal/ghaction/ghactiontest"
)

func TestMainStepLoadsImages(t *testing.T) {
	e := newEnv(t)
	f := newImageAPI(t, e.api)
	engine := newDockerEngineFake(t, map[string]v1.Image{"app:dev": randomImage(t), "redis:7": randomImage(t)})
	savedFile(t, filepath.Join(e.runner.Workspace, "build"), "sidecar.tar", "ghcr.io/octo/sidecar:1")
	in := e.inputs(map[string]string{"api-url": f.URL, "images": "app:dev\nbuild/sidecar.tar  redis:7\n"})

	main := e.mainStep(in, func(s *ghactiontest.Step) { s.Set("DOCKER_HOST", engine.Host) })
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	id := main.res.Outputs["cluster-id"]
	loads := f.Loads()
	if len(loads) != 2 {
		t.Fatalf("uploads = %+v, want the file's and one Docker export", loads)
	}
	var got []string
	for _, l := range loads {
		if l.ClusterID != id || l.Status != 200 {
			t.Errorf("upload %+v, want 200 into %s", l, id)
		}
		got = append(got, names(l.Images)...)
	}
	if want := []string{"ghcr.io/octo/sidecar:1", "docker.io/library/app:dev", "docker.io/library/redis:7"}; !slices.Equal(got, want) {
		t.Errorf("imported %q, want %q (the file first, then the export)", got, want)
	}
	for _, l := range loads {
		for _, img := range l.Images {
			if row := "| `" + img.Name + "` | `" + img.Digest + "` |"; !strings.Contains(main.res.Summary, row) {
				t.Errorf("the job summary lacks %q:\n%s", row, main.res.Summary)
			}
		}
	}
	if reqs := engine.Requests(); len(reqs) != 1 || !slices.Equal(reqs[0]["names"], []string{"app:dev", "redis:7"}) {
		t.Errorf("engine requests = %v", reqs)
	}
	loaded := strings.Index(main.stdout, "Loaded app:dev redis:7 into "+id)
	ready := strings.Index(main.stdout, "for the following steps")
	if loaded < 0 || ready < loaded {
		t.Errorf("the log does not show the images loaded before the cluster is handed over:\n%s", main.stdout)
	}
}

func TestMainStepImageFailure(t *testing.T) {
	e := newEnv(t)
	f := newImageAPI(t, e.api)
	engine := newDockerEngineFake(t, map[string]v1.Image{"app:dev": randomImage(t)})
	in := e.inputs(map[string]string{"api-url": f.URL, "images": "app:dev app:nope"})

	main := e.mainStep(in, func(s *ghactiontest.Step) { s.Set("DOCKER_HOST", engine.Host) })
	if main.err == nil {
		t.Fatal("main step succeeded with an image the runner's Docker does not have")
	}
	errs := annotations(main.stdout, "error")
	if len(errs) != 1 || !strings.Contains(errs[0], "input images:") || !strings.Contains(errs[0], "No such image: app:nope") {
		t.Errorf("errors = %q, want one naming app:nope", errs)
	}
	if len(main.res.Outputs) != 0 {
		t.Errorf("outputs = %v, want none for a failed step", main.res.Outputs)
	}
	// The post step ends the cluster all the same.
	id := main.res.State[stateClusterID]
	if id == "" {
		t.Fatal("no cluster id saved for the post step")
	}
	if post := e.postStep(in); post.err != nil {
		t.Fatalf("post step: %v", post.err)
	}
	if cl, _ := e.api.Cluster(id); cl.ClusterStatus != "terminated" {
		t.Errorf("cluster %s is %s after the post step, want terminated", id, cl.ClusterStatus)
	}
	if n := len(f.Loads()); n != 0 {
		t.Errorf("the server saw %d uploads", n)
	}
}
