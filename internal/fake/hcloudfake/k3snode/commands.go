package k3snode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// run executes one command line the way the machine's shell would, for the
// commands SMEK sends. It returns the exit status.
func (n *Node) run(line string, stdin io.Reader, stdout, stderr io.Writer) int {
	return n.runEnv(line, nil, stdin, stdout, stderr)
}

// runEnv is run with the session's environment (sshd sets SSH_CLIENT).
func (n *Node) runEnv(line string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	args, err := splitWords(line)
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	if i := indexOf(args, "|"); i >= 0 {
		return n.pipeline(args[:i], args[i+1:], stderr)
	}
	if len(args) == 0 {
		return 0
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, format+"\n", a...)
		return code
	}
	switch args[0] {
	case "true", "sync":
		return 0
	case "echo":
		// Parameters are expanded (unset ones are empty); splitWords
		// keeps "$NAME" as written.
		words := make([]string, len(args)-1)
		for i, w := range args[1:] {
			words[i] = os.Expand(w, func(k string) string { return env[k] })
		}
		fmt.Fprintln(stdout, strings.Join(words, " "))
		return 0
	case "hostname":
		b, _ := n.readFile("/etc/hostname")
		_, _ = stdout.Write(b)
		return 0
	case "install":
		// install -D -m MODE /dev/stdin PATH
		if len(args) != 6 || args[1] != "-D" || args[2] != "-m" || args[4] != "/dev/stdin" {
			return fail(1, "install: usage: install -D -m MODE /dev/stdin PATH")
		}
		mode, err := strconv.ParseUint(args[3], 8, 32)
		if err != nil {
			return fail(1, "install: invalid mode %q", args[3])
		}
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<20))
		if err != nil {
			return fail(1, "install: read stdin: %v", err)
		}
		if err := n.writeFile(args[5], b, os.FileMode(mode)); err != nil {
			return fail(1, "install: %v", err)
		}
		return 0
	case "cat":
		for _, p := range args[1:] {
			b, err := n.readFile(p)
			if err != nil {
				return fail(1, "cat: %s: No such file or directory", p)
			}
			_, _ = stdout.Write(b)
		}
		return 0
	case "test":
		if len(args) != 3 || (args[1] != "-e" && args[1] != "-f") {
			return fail(2, "test: unsupported expression")
		}
		if _, err := n.readFile(args[2]); err != nil {
			return 1
		}
		return 0
	case "mkdir":
		for _, p := range args[1:] {
			if p == "-p" {
				continue
			}
			full, err := n.path(p)
			if err == nil {
				err = os.MkdirAll(full, 0o755)
			}
			if err != nil {
				return fail(1, "mkdir: %v", err)
			}
		}
		return 0
	case "rm":
		for _, p := range args[1:] {
			if strings.HasPrefix(p, "-") {
				continue
			}
			full, err := n.path(p)
			if err != nil || full == n.disk {
				return fail(1, "rm: refusing to remove %q", p)
			}
			_ = os.RemoveAll(full)
		}
		return 0
	case "cloud-init":
		if len(args) < 2 || args[1] != "clean" {
			return fail(1, "cloud-init: only clean is supported")
		}
		for _, p := range []string{"/var/lib/cloud", "/var/log/cloud-init.log"} {
			full, _ := n.path(p)
			_ = os.RemoveAll(full)
		}
		if indexOf(args, "--machine-id") >= 0 {
			// "Set /etc/machine-id to 'uninitialized' for golden image
			// creation": the next boot makes a new one.
			if err := n.writeFile("/etc/machine-id", []byte("uninitialized\n"), 0o444); err != nil {
				return fail(1, "cloud-init: %v", err)
			}
		}
		return 0
	case "curl":
		return n.download(args[1:], stderr)
	case "k3s":
		b, err := n.readFile(k3sBinary)
		if err != nil {
			return fail(127, "sh: k3s: not found")
		}
		if len(args) > 1 && args[1] == "ctr" {
			return n.ctr(args[2:], stdin, stdout, stderr)
		}
		fmt.Fprintf(stdout, "k3s version %s\n", installedVersion(b))
		return 0
	case "systemctl":
		return n.systemctl(args[1:], stdout, stderr)
	default:
		return fail(127, "sh: %s: not found", args[0])
	}
}

const (
	k3sBinary  = "/usr/local/bin/k3s"
	k3sUnit    = "/etc/systemd/system/k3s.service"
	airgapDir  = "/var/lib/rancher/k3s/agent/images/"
	installURL = "https://get.k3s.io"
	// wantsDir holds the units enabled at boot (systemctl enable links
	// them here).
	wantsDir = "/etc/systemd/system/multi-user.target.wants/"
)

func installedVersion(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "# k3s "); ok {
			return v
		}
	}
	return "unknown"
}

// pipeline supports the one pipeline the image build runs: the k3s
// installer, `curl -sfL https://get.k3s.io | VAR=... sh -`.
func (n *Node) pipeline(left, right []string, stderr io.Writer) int {
	if len(left) < 2 || left[0] != "curl" || left[len(left)-1] != installURL {
		fmt.Fprintln(stderr, "sh: only the k3s installer may be piped")
		return 2
	}
	env := map[string]string{}
	for len(right) > 0 && strings.Contains(right[0], "=") {
		k, v, _ := strings.Cut(right[0], "=")
		env[k] = v
		right = right[1:]
	}
	if len(right) < 1 || right[0] != "sh" {
		fmt.Fprintln(stderr, "sh: the installer must be piped into sh")
		return 2
	}
	version := env["INSTALL_K3S_VERSION"]
	if version == "" {
		version = "stable"
	}
	bin := fmt.Sprintf("#!/bin/sh\n# simulated k3s binary\n# k3s %s\n", version)
	if err := n.writeFile(k3sBinary, []byte(bin), 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	unit := "[Unit]\nDescription=Lightweight Kubernetes\n[Service]\nType=notify\nExecStart=/usr/local/bin/k3s server\n"
	if err := n.writeFile(k3sUnit, []byte(unit), 0o644); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if env["INSTALL_K3S_SKIP_START"] != "true" {
		// The real installer starts k3s here, which makes the CA and token
		// that every clone of an image would then share.
		var out strings.Builder
		return n.systemctl([]string{"start", "k3s"}, &out, stderr)
	}
	return 0
}

// download simulates `curl -sfLo PATH URL` (or -o PATH): the file gets a
// placeholder naming what was fetched.
func (n *Node) download(args []string, stderr io.Writer) int {
	var out, url string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "-") && strings.HasSuffix(a, "o") && i+1 < len(args):
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "-"):
		default:
			url = a
		}
	}
	if out == "" || url == "" {
		fmt.Fprintln(stderr, "curl: only downloads to a file (-o PATH URL) are supported")
		return 2
	}
	if err := n.writeFile(out, []byte("simulated download of "+url+"\n"), 0o644); err != nil {
		fmt.Fprintln(stderr, "curl:", err)
		return 23
	}
	return 0
}

func (n *Node) systemctl(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && (args[0] == "enable" || args[0] == "disable") {
		unit := strings.TrimSuffix(args[1], ".service") + ".service"
		if _, err := n.readFile("/etc/systemd/system/" + unit); err != nil {
			fmt.Fprintf(stderr, "Failed to enable unit: Unit file %s does not exist.\n", unit)
			return 1
		}
		link := wantsDir + unit
		if args[0] == "disable" {
			full, _ := n.path(link)
			_ = os.Remove(full)
			return 0
		}
		if err := n.writeFile(link, []byte("/etc/systemd/system/"+unit+"\n"), 0o644); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if len(args) != 2 || args[1] != "k3s" && args[1] != "k3s.service" {
		fmt.Fprintln(stderr, "systemctl: only the k3s unit is known")
		return 5
	}
	if _, err := n.readFile(k3sUnit); err != nil {
		fmt.Fprintln(stderr, "Failed to start k3s.service: Unit k3s.service not found.")
		return 5
	}
	switch args[0] {
	case "is-active":
		if n.K3sRunning() {
			fmt.Fprintln(stdout, "active")
			return 0
		}
		fmt.Fprintln(stdout, "inactive")
		return 3
	case "enable", "disable":
		return 0
	case "stop":
		n.mu.Lock()
		k := n.k3s
		n.k3s = nil
		_ = n.unlisten(k3sAPIPort)
		if k != nil {
			for _, p := range k.kubelet.hostPorts() {
				_ = n.unlisten(p) // the pods' host ports (ServiceLB)
			}
		}
		n.mu.Unlock()
		if k != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := k.stop(ctx); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		return 0
	case "start", "restart":
		if fault := n.diskFault(); fault != "" {
			fmt.Fprintf(stderr, "Job for k3s.service failed: %s\n", fault)
			return 1
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.k3s != nil {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		k, err := startK3s(ctx, n)
		if err != nil {
			fmt.Fprintf(stderr, "Job for k3s.service failed: %v\n", err)
			return 1
		}
		n.k3s = k
		return 0
	default:
		fmt.Fprintf(stderr, "systemctl: unknown command %q\n", args[0])
		return 1
	}
}

// splitWords splits a command line into words with POSIX-like quoting:
// single quotes, double quotes and backslashes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated quote")
			}
			i = j
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
