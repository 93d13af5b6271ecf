package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/smektest"
)

// tokenExpiry returns the exp claim of the tenant token in a kubeconfig
// file, read without checking the signature: the kube-apiserver signs it.
func tokenExpiry(t *testing.T, path string) time.Time {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tok string
	for _, a := range cfg.AuthInfos {
		tok = a.Token
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("the kubeconfig's token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		t.Fatalf("token claims %s: %v", payload, err)
	}
	return time.Unix(claims.Exp, 0)
}

// TestEndToEndExtend is issue 13's item 12 against a real server: a job's
// cluster made with minutes-to-live 15 is extended by an hour from a later
// step with `smek extend`; the kubeconfig file the job holds then carries a
// token valid until the new deadline at least, and works.
func TestEndToEndExtend(t *testing.T) {
	e := startE2E(t, 1)
	kubectl := filepath.Join(smektest.KubeBin(t), "kubectl")

	in := e.inputs()
	in["minutes-to-live"] = "15"
	main := e.runner.ContainerStep(in)
	var out syncBuffer
	if err := e.program(t, main, &out).run(t.Context(), nil); err != nil {
		t.Fatalf("main step: %v\n%s", err, out.String())
	}
	res := main.Done()
	id, path := res.Outputs["cluster-id"], res.Env["KUBECONFIG"]

	host := e.runner.HostStep()
	host.Set("SMEK_API_URL", e.srv.URL)
	host.Set("SMEK_TOKEN", e.token)
	var stdout, stderr syncBuffer
	if err := run(t.Context(), []string{"extend", id, "--minutes", "60"}, host.Getenv, &stdout, &stderr); err != nil {
		t.Fatalf("smek extend: %v\n%s", err, stderr.String())
	}
	t.Logf("smek extend: %s%s", stdout.String(), stderr.String())

	c, err := client.New(e.srv.URL, e.token)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cl.ExpiresAt); left < 70*time.Minute {
		t.Fatalf("deadline %s is %s away, want about 75 minutes", cl.ExpiresAt, left)
	}
	if exp := tokenExpiry(t, path); exp.Before(cl.ExpiresAt) {
		t.Errorf("the job's kubeconfig expires at %s, before the new deadline %s", exp, cl.ExpiresAt)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode: %v, %v; want 0600", fi, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, "get", "ns", "default", "-o", "name")
	cmd.Env = host.Environ()
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "namespace/default") {
		t.Errorf("kubectl with the job's KUBECONFIG after extend: %v: %s", err, got)
	}
	host.Done()
}
