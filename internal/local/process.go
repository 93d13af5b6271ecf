package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one child process of a control plane.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // the exit error; valid once done is closed
}

// startProcess starts bin at boot priority (see startAtBootPriority), its
// output appended to logPath.
func startProcess(bin string, args []string, logPath string) (*process, error) {
	return startWrapped(nil, bin, args, logPath)
}

// startWrapped starts bin as startProcess does, through the command
// wrapper (nsenter into a node's namespaces, say) when it is not empty.
func startWrapped(wrapper []string, bin string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	argv := append(append(slices.Clone(wrapper), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Dir(filepath.Dir(logPath))}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the provisioner dies without stopping its children, the
		// kernel kills them: a crash leaks no control plane.
		Pdeathsig: syscall.SIGKILL,
	}
	p := &process{name: filepath.Base(bin), cmd: cmd, logPath: logPath, done: make(chan struct{})}
	err = startAtBootPriority(cmd, func(err error) {
		p.err = err
		logf.Close()
		close(p.done)
	})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	return p, nil
}

// exited returns a non-nil error once the process has exited.
func (p *process) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return fmt.Errorf("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to grace (kube-apiserver lingers for many
// seconds draining), then SIGKILLs the process group.
func (p *process) stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return nil
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

const pidFile = "pids"

// writePIDs records the children's pids so that a provisioner that was
// killed can find and end them at its next start.
func (cp *ControlPlane) writePIDs() error {
	var b strings.Builder
	for _, p := range cp.procs {
		fmt.Fprintf(&b, "%d\n", p.cmd.Process.Pid)
	}
	return os.WriteFile(filepath.Join(cp.cfg.Dir, pidFile), []byte(b.String()), 0o600)
}

// KillStale kills processes recorded in dir's pid files (the control
// plane's and the node's) that still run from dir (checked through /proc,
// so a recycled pid of another program is left alone). It returns how many
// it killed.
func KillStale(dir string) int {
	killed := 0
	for _, file := range []string{pidFile, nodePIDFile} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid <= 1 {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", f, "cmdline"))
			if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
				continue
			}
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
		os.Remove(filepath.Join(dir, file))
	}
	return killed
}
