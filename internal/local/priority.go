package local

// A pool boots members in the background while the provisioner answers
// claims, and a boot is the heaviest work on the machine: kube-apiserver's
// start takes a core for seconds. So a control plane's processes start at a
// lower CPU priority (10 nice levels below the provisioner) and the lowest
// best-effort I/O level, and a member that is ready is raised back to the
// provisioner's nice and the default I/O level (Prioritize), so that a
// claimed cluster is not slowed by the boots that follow it.
//
// Linux keeps both values per thread (sched(7), ioprio_set(2)), and a new
// thread or process copies them from the thread that creates it: lowering
// the one thread that forks a child lowers the child and every thread it
// makes, with no window in which it runs at full priority.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

const (
	// bootNiceIncrement is how many nice levels a booting control plane
	// runs below the provisioner.
	bootNiceIncrement = 10
	// maxNice is the lowest CPU priority Linux has.
	maxNice = 19
	// bootIOLevel and readyIOLevel are best-effort I/O levels (0 is the
	// highest, 7 the lowest); 4 is what a thread at nice 0 gets by default.
	bootIOLevel  = 7
	readyIOLevel = 4
)

// ioprio_set(2) and ioprio_get(2) constants, from linux/ioprio.h;
// golang.org/x/sys/unix has the syscall numbers but not these.
const (
	ioprioWhoProcess = 1 // who is a thread id
	ioprioClassBE    = 2
	ioprioClassShift = 13
)

// ErrNiceDenied means the processes of a ready control plane could not be
// raised back to the provisioner's nice: that needs CAP_SYS_NICE (or a
// RLIMIT_NICE that allows it), which a provisioner run as an ordinary user
// lacks. Their I/O priority is raised all the same; they keep the boot nice,
// at which ready members still share the CPU fairly among themselves but
// yield it to the provisioner and anything else at its nice.
var ErrNiceDenied = errors.New("raising the nice of a ready control plane needs CAP_SYS_NICE")

// startAtBootPriority starts cmd from an OS thread of its own, lowered to
// boot priority, so that the child inherits it, and returns Start's error.
// When cmd has started, exited receives Wait's error once it has ended.
func startAtBootPriority(cmd *exec.Cmd, exited func(error)) error {
	started := make(chan error, 1)
	go runAtBootPriority(cmd, started, exited)
	return <-started
}

// runAtBootPriority is the goroutine of startAtBootPriority. It returns
// with its thread locked, so the runtime ends the thread instead of running
// other goroutines on it: without CAP_SYS_NICE it could not get its
// priority back. The thread waits for the child before it ends because a
// child's Pdeathsig fires when the thread that forked it exits, not the
// process (prctl(2) PR_SET_PDEATHSIG; golang/go#27505).
func runAtBootPriority(cmd *exec.Cmd, started chan<- error, exited func(error)) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The runtime does not end the main thread when a locked goroutine
		// returns, it parks it for good; and the main thread's nice is
		// what ps shows as the provisioner's. Holding it while another
		// goroutine does the work sends that one to another thread.
		defer runtime.UnlockOSThread()
		next := make(chan error, 1)
		go runAtBootPriority(cmd, next, exited)
		started <- <-next
		return
	}
	if err := lowerThread(); err != nil {
		started <- err
		return
	}
	if err := cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	exited(cmd.Wait())
}

// lowerThread sets the calling thread to boot priority.
func lowerThread() error {
	tid := unix.Gettid()
	nice, err := threadNice(tid)
	if err != nil {
		return err
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, min(nice+bootNiceIncrement, maxNice)); err != nil {
		return fmt.Errorf("lower nice: %w", err)
	}
	if err := setIOPriority(tid, bestEffort(bootIOLevel)); err != nil {
		return fmt.Errorf("lower i/o priority: %w", err)
	}
	return nil
}

// Prioritize raises every thread of the control plane's processes to the
// provisioner's nice and the default best-effort I/O level, for a member
// that is ready. When only the nice could not be raised, the error wraps
// ErrNiceDenied.
func (cp *ControlPlane) Prioritize() error {
	nice, err := threadNice(os.Getpid())
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range cp.procs {
		if err := raiseProcess(p.cmd.Process.Pid, nice); err != nil {
			errs = append(errs, fmt.Errorf("prioritize %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// raiseProcess raises every thread of process pid to nice and the default
// I/O level. When only the nice could not be raised, the error wraps
// ErrNiceDenied.
func raiseProcess(pid, nice int) error {
	if err := raiseThreads(pid, raiseIOPriority); err != nil {
		return err
	}
	err := raiseThreads(pid, func(tid int) (bool, error) { return raiseNice(tid, nice) })
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrNiceDenied, err)
	}
	return err
}

// raiseThreads calls raise, which reports whether it changed anything, on
// every thread of process pid. A thread that appears during a pass over the
// task list copies the thread that made it, which the pass may not have
// raised yet; so passes repeat until one changes nothing. Every thread alive
// at the start of that pass was raised, and every later one copies a raised
// thread.
func raiseThreads(pid int, raise func(tid int) (bool, error)) error {
	for {
		tids, err := threads(pid)
		if err != nil {
			return err
		}
		changed := false
		for _, tid := range tids {
			c, err := raise(tid)
			if errors.Is(err, unix.ESRCH) {
				continue // the thread has ended
			}
			if err != nil {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			changed = changed || c
		}
		if !changed {
			return nil
		}
	}
}

// raiseIOPriority sets thread tid to the default best-effort level and
// reports whether it was at another. Raising it within the best-effort
// class needs no privilege (ioprio_set(2)).
func raiseIOPriority(tid int) (bool, error) {
	prio, err := ioPriority(tid)
	if err != nil || prio == bestEffort(readyIOLevel) {
		return false, err
	}
	return true, setIOPriority(tid, bestEffort(readyIOLevel))
}

// raiseNice sets thread tid's nice to nice and reports whether it had
// another.
func raiseNice(tid, nice int) (bool, error) {
	cur, err := threadNice(tid)
	if err != nil || cur == nice {
		return false, err
	}
	return true, unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}

// threads lists the thread ids of process pid.
func threads(pid int) ([]int, error) {
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// threadNice returns the nice of thread tid. The system call returns
// 20 - nice, so that no valid value looks like an error (getpriority(2)).
func threadNice(tid int) (int, error) {
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	return 20 - prio, err
}

// bestEffort is the ioprio value of a best-effort level.
func bestEffort(level int) int { return ioprioClassBE<<ioprioClassShift | level }

func setIOPriority(tid, prio int) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(prio)); errno != 0 {
		return errno
	}
	return nil
}

func ioPriority(tid int) (int, error) {
	prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(prio), nil
}
