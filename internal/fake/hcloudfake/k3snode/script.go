package k3snode

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// scriptResult is how an interpreted script ended.
type scriptResult struct {
	exit   int
	stderr string
}

// scriptFS maps the paths a script names to the node's disk.
type scriptFS interface {
	hostPath(cpath string) (string, error)
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// runScript interprets a shell script of the kind local-path-provisioner's
// helper pods run (k3s's setup and teardown): comments, `set -e`/`-u`,
// `mkdir [-m MODE] [-p]`, `chmod MODE`, `rm [-r] [-f]`, `true`, `exit N`,
// with $VAR and ${VAR} taken from env. Any other command fails with 127,
// as in a shell that does not have it.
func runScript(src string, env map[string]string, fs scriptFS) scriptResult {
	var stderr strings.Builder
	errexit, nounset, status := false, false, 0
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var unset string
		line = varRE.ReplaceAllStringFunc(line, func(m string) string {
			name := strings.Trim(m, "${}")
			v, ok := env[name]
			if !ok && unset == "" {
				unset = name
			}
			return v
		})
		if unset != "" && nounset {
			fmt.Fprintf(&stderr, "sh: %s: parameter not set\n", unset)
			return scriptResult{exit: 2, stderr: stderr.String()}
		}
		args, err := splitWords(line)
		if err != nil {
			fmt.Fprintf(&stderr, "sh: %v\n", err)
			return scriptResult{exit: 2, stderr: stderr.String()}
		}
		if len(args) == 0 {
			continue
		}
		switch args[0] {
		case "set":
			for _, a := range args[1:] {
				on := strings.HasPrefix(a, "-")
				errexit = errexit && !(strings.HasPrefix(a, "+") && strings.Contains(a, "e")) || on && strings.Contains(a, "e")
				nounset = nounset && !(strings.HasPrefix(a, "+") && strings.Contains(a, "u")) || on && strings.Contains(a, "u")
			}
			status = 0
		case "exit":
			code := status
			if len(args) > 1 {
				code, _ = strconv.Atoi(args[1])
			}
			return scriptResult{exit: code, stderr: stderr.String()}
		default:
			status = scriptCommand(args, fs, &stderr)
		}
		if status != 0 && errexit {
			return scriptResult{exit: status, stderr: stderr.String()}
		}
	}
	return scriptResult{exit: status, stderr: stderr.String()}
}

func scriptCommand(args []string, fs scriptFS, stderr *strings.Builder) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, format+"\n", a...)
		return 1
	}
	resolve := func(p string) (string, error) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // the helper's working folder is /
		}
		return fs.hostPath(path.Clean(p))
	}
	switch args[0] {
	case "true", ":":
		return 0
	case "mkdir":
		parents, mode := false, os.FileMode(0o755)
		var paths []string
		for i := 1; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-p":
				parents = true
			case a == "-m" && i+1 < len(args):
				m, err := strconv.ParseUint(args[i+1], 8, 32)
				if err != nil {
					return fail("mkdir: invalid mode '%s'", args[i+1])
				}
				mode, i = os.FileMode(m), i+1
			case strings.HasPrefix(a, "-"):
				return fail("mkdir: unrecognized option '%s'", a)
			default:
				paths = append(paths, a)
			}
		}
		for _, p := range paths {
			full, err := resolve(p)
			if err != nil {
				return fail("mkdir: can't create directory '%s': %v", p, err)
			}
			if parents {
				err = os.MkdirAll(full, 0o755)
			} else {
				err = os.Mkdir(full, 0o755)
			}
			if err == nil {
				err = os.Chmod(full, mode)
			}
			if err != nil {
				return fail("mkdir: can't create directory '%s': %v", p, err)
			}
		}
		return 0
	case "chmod":
		if len(args) < 3 {
			return fail("chmod: missing operand")
		}
		m, err := strconv.ParseUint(args[1], 8, 32)
		if err != nil {
			return fail("chmod: invalid mode '%s'", args[1])
		}
		for _, p := range args[2:] {
			full, err := resolve(p)
			if err == nil {
				err = os.Chmod(full, os.FileMode(m))
			}
			if err != nil {
				return fail("chmod: %s: %v", p, err)
			}
		}
		return 0
	case "rm":
		recursive, force := false, false
		var paths []string
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				recursive = recursive || strings.ContainsAny(a, "rR")
				force = force || strings.Contains(a, "f")
				continue
			}
			paths = append(paths, a)
		}
		for _, p := range paths {
			full, err := resolve(p)
			if err != nil {
				return fail("rm: can't remove '%s': %v", p, err)
			}
			if recursive {
				err = os.RemoveAll(full)
			} else {
				err = os.Remove(full)
			}
			if err != nil && !(force && os.IsNotExist(err)) {
				return fail("rm: can't remove '%s': %v", p, err)
			}
		}
		return 0
	}
	fmt.Fprintf(stderr, "sh: %s: not found\n", args[0])
	return 127
}
