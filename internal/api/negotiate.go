package api

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// format is how a kubeconfig answer is written.
type format int

const (
	formatShell format = iota // a script for `curl ... | sh -` (the default)
	formatJSON
	formatYAML
)

// negotiate picks the answer format from the Accept header. JSON and YAML
// must be asked for; anything else — curl's */*, no header — gets the shell
// script, because the documented usage is `curl ... | sh -`.
func negotiate(r *http.Request) format {
	best, bestQ := formatShell, 0.0
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		var f format
		switch mt {
		case wire.MediaJSON, wire.MediaProblem:
			f = formatJSON
		case "application/yaml", "application/x-yaml", "text/yaml":
			f = formatYAML
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

// writeKubeconfig answers a create or start in the negotiated format.
func (s *Server) writeKubeconfig(w http.ResponseWriter, r *http.Request, status int, c cluster.Cluster, kc cluster.Kubeconfig) {
	switch negotiate(r) {
	case formatJSON:
		wc := s.toWire(c)
		wc.Kubeconfig = string(kc.YAML)
		writeJSON(w, status, wire.MediaJSON, wc)
	case formatYAML:
		w.Header().Set("Content-Type", wire.MediaYAML)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set(wire.HeaderClusterID, string(c.ID))
		w.WriteHeader(status)
		w.Write(kc.YAML)
	default:
		w.Header().Set("Content-Type", wire.MediaShell)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set(wire.HeaderClusterID, string(c.ID))
		w.WriteHeader(status)
		w.Write(shellScript(c, kc))
	}
}

// shellScript writes the kubeconfig to $HOME/.kube/smek-<id>.yaml (mode 600,
// never touching ~/.kube/config) and prints the id and the export line.
func shellScript(c cluster.Cluster, kc cluster.Kubeconfig) []byte {
	id := string(c.ID) // c- and [a-z0-9]: safe in a shell word
	path := `"$HOME/.kube/smek-` + id + `.yaml"`
	eof := "SMEK_KUBECONFIG_" + strings.ReplaceAll(id, "-", "_")
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# SMEK cluster %s: Kubernetes %s, running until %s.\n", id, c.Spec.K8sVersion, c.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# Saves its kubeconfig to $HOME/.kube/smek-%s.yaml; ~/.kube/config is left alone.\n", id)
	b.WriteString("set -eu\numask 077\nmkdir -p \"$HOME/.kube\"\n")
	fmt.Fprintf(&b, "cat > %s <<'%s'\n%s", path, eof, kc.YAML)
	if !strings.HasSuffix(string(kc.YAML), "\n") {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s\nchmod 600 %s\n", eof, path)
	fmt.Fprintf(&b, "echo \"SMEK cluster %s is running until %s.\"\n", id, c.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "echo \"export KUBECONFIG=\\\"$HOME/.kube/smek-%s.yaml\\\"\"\n", id)
	return []byte(b.String())
}

// shellError is the answer to a script client when its request failed: the
// script prints the problem and fails, instead of sh choking on JSON.
func shellError(p wire.Problem) []byte {
	msg := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, fmt.Sprintf("SMEK: %s (HTTP %d %s)", p.Detail, p.Status, p.Code))
	quoted := "'" + strings.ReplaceAll(msg, "'", `'\''`) + "'"
	return []byte("#!/bin/sh\nprintf '%s\\n' " + quoted + " >&2\nexit 1\n")
}
