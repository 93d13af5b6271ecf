package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// helperArg makes the test binary run as threadsHelper: the child whose
// threads the priority tests inspect.
const helperArg = "smek-priority-helper"

// mainThread runs functions on the process's main thread, for the test of
// a start from it.
var mainThread = make(chan func())

// Locking the main goroutine in an init function keeps it on the main
// thread (runtime.LockOSThread), so TestMain serves mainThread from there.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == helperArg {
		threadsHelper()
		return
	}
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-mainThread:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

// threadsHelper starts four threads and prints "ready"; then, for every
// line on stdin, it starts one more thread and prints its id. It exits when
// stdin closes.
func threadsHelper() {
	tids := make(chan int)
	for range 4 {
		go holdThread(tids)
	}
	for range 4 {
		<-tids
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		go holdThread(tids)
		fmt.Println(<-tids)
	}
	os.Exit(0)
}

// holdThread takes an OS thread for good and sends its id.
func holdThread(tids chan<- int) {
	runtime.LockOSThread()
	tids <- unix.Gettid()
	select {}
}

// helper is a running threadsHelper.
type helper struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

// startHelper starts a threadsHelper with start, which must start the
// command at boot priority and call exited with Wait's error, and waits
// until its threads run. The helper is killed when the test ends.
func startHelper(t *testing.T, start func(cmd *exec.Cmd, exited func(error)) error) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], helperArg)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if err := start(cmd, func(error) { close(done) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	h := &helper{cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	if line := h.line(t); line != "ready" {
		t.Fatalf("helper said %q, want ready", line)
	}
	return h
}

func (h *helper) line(t *testing.T) string {
	t.Helper()
	if !h.out.Scan() {
		t.Fatalf("helper ended: %v", h.out.Err())
	}
	return h.out.Text()
}

// newThread has the helper start a thread and returns its id.
func (h *helper) newThread(t *testing.T) int {
	t.Helper()
	if _, err := io.WriteString(h.in, "\n"); err != nil {
		t.Fatal(err)
	}
	tid, err := strconv.Atoi(h.line(t))
	if err != nil {
		t.Fatal(err)
	}
	return tid
}

// controlPlane is a ControlPlane whose one process is the helper.
func (h *helper) controlPlane() *ControlPlane {
	return &ControlPlane{procs: []*process{{name: "helper", cmd: h.cmd}}}
}

// statNice reads thread tid's nice from field 19 of its stat file (proc(5)),
// not through getpriority as the code under test does.
func statNice(t *testing.T, pid, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	// Field 2, the command, is in parentheses and may hold spaces; field
	// 3 is the first after it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	nice, err := strconv.Atoi(fields[19-3])
	if err != nil {
		t.Fatal(err)
	}
	return nice
}

type priority struct{ nice, io int }

func (p priority) String() string {
	return fmt.Sprintf("nice %d, i/o class %d level %d", p.nice, p.io>>ioprioClassShift, p.io&(1<<ioprioClassShift-1))
}

func threadPriority(t *testing.T, pid, tid int) priority {
	t.Helper()
	io, err := ioPriority(tid)
	if err != nil {
		t.Fatalf("ioprio_get %d: %v", tid, err)
	}
	return priority{nice: statNice(t, pid, tid), io: io}
}

// checkThreads checks that every thread of process pid has priority want.
func checkThreads(t *testing.T, name string, pid int, want priority) {
	t.Helper()
	tids, err := threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if got := threadPriority(t, pid, tid); got != want {
			t.Errorf("%s thread %d: %v, want %v", name, tid, got, want)
		}
	}
}

// priorities returns the provisioner's priority (this process's main
// thread's), and those at which a control plane boots and runs once ready.
func priorities(t *testing.T) (self, boot, ready priority) {
	self = threadPriority(t, os.Getpid(), os.Getpid())
	boot = priority{nice: min(self.nice+bootNiceIncrement, maxNice), io: bestEffort(bootIOLevel)}
	ready = priority{nice: self.nice, io: bestEffort(readyIOLevel)}
	return self, boot, ready
}

// checkSelf checks that the provisioner's main thread and the test's own
// thread kept their priority.
func checkSelf(t *testing.T, want priority) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, tid := range []int{os.Getpid(), unix.Gettid()} {
		if got := threadPriority(t, os.Getpid(), tid); got != want {
			t.Errorf("provisioner thread %d: %v, want %v", tid, got, want)
		}
	}
}

// TestChildBootsAtLowPriority: the child, every thread it makes, runs at
// boot priority from the start; the provisioner does not.
func TestChildBootsAtLowPriority(t *testing.T) {
	self, boot, _ := priorities(t)
	h := startHelper(t, startAtBootPriority)
	pid := h.cmd.Process.Pid
	tids, err := threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) < 5 {
		t.Fatalf("helper has %d threads, want at least 5", len(tids))
	}
	checkThreads(t, "helper", pid, boot)
	if got := threadPriority(t, pid, h.newThread(t)); got != boot {
		t.Errorf("thread made after the start: %v, want %v", got, boot)
	}
	checkSelf(t, self)
}

// TestStartFromTheMainThread: a start that happens to run on the main
// thread, which the runtime never ends, leaves it at its priority.
func TestStartFromTheMainThread(t *testing.T) {
	self, boot, _ := priorities(t)
	h := startHelper(t, func(cmd *exec.Cmd, exited func(error)) error {
		started := make(chan error, 1)
		mainThread <- func() { runAtBootPriority(cmd, started, exited) }
		return <-started
	})
	checkThreads(t, "helper", h.cmd.Process.Pid, boot)
	checkSelf(t, self)
}

// TestPrioritizeRaisesEveryThread: after Prioritize every thread of the
// child, and every thread it makes later, runs at the provisioner's
// priority.
func TestPrioritizeRaisesEveryThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising a nice needs CAP_SYS_NICE: run as root to test it (TestPrioritizeWithoutCapSysNice covers the rest)")
	}
	self, _, ready := priorities(t)
	h := startHelper(t, startAtBootPriority)
	if err := h.controlPlane().Prioritize(); err != nil {
		t.Fatal(err)
	}
	pid := h.cmd.Process.Pid
	checkThreads(t, "helper", pid, ready)
	if got := threadPriority(t, pid, h.newThread(t)); got != ready {
		t.Errorf("thread made after Prioritize: %v, want %v", got, ready)
	}
	checkSelf(t, self)
}

// TestPrioritizeWithoutCapSysNice: without the capability Prioritize says
// so with ErrNiceDenied, and still raises the I/O priority.
func TestPrioritizeWithoutCapSysNice(t *testing.T) {
	_, boot, ready := priorities(t)
	h := startHelper(t, startAtBootPriority)
	errc := make(chan error)
	go func() {
		// Capabilities are per thread too (capabilities(7)): this one
		// drops CAP_SYS_NICE and is ended by the runtime when the
		// goroutine returns locked.
		runtime.LockOSThread()
		if err := dropCapability(unix.CAP_SYS_NICE); err != nil {
			errc <- err
			return
		}
		errc <- h.controlPlane().Prioritize()
	}()
	err := <-errc
	if !errors.Is(err, ErrNiceDenied) {
		t.Fatalf("Prioritize: %v, want ErrNiceDenied", err)
	}
	checkThreads(t, "helper", h.cmd.Process.Pid, priority{nice: boot.nice, io: ready.io})
}

// dropCapability removes capability c from the calling thread's effective
// set.
func dropCapability(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[c/32].Effective &^= 1 << (c % 32)
	return unix.Capset(&hdr, &data[0])
}

// TestControlPlaneBootsAtLowPriority: every thread of a real control plane
// boots at low priority, and Prioritize raises them all.
func TestControlPlaneBootsAtLowPriority(t *testing.T) {
	bin := kubeBin(t)
	self, boot, ready := priorities(t)
	cp, err := StartControlPlane(context.Background(), ControlPlaneConfig{Dir: filepath.Join(t.TempDir(), "cp"), BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })
	for _, p := range cp.procs {
		checkThreads(t, p.name, p.cmd.Process.Pid, boot)
	}
	err = cp.Prioritize()
	if os.Geteuid() != 0 {
		if !errors.Is(err, ErrNiceDenied) {
			t.Fatalf("Prioritize as an ordinary user: %v, want ErrNiceDenied", err)
		}
		ready.nice = boot.nice
	} else if err != nil {
		t.Fatal(err)
	}
	for _, p := range cp.procs {
		checkThreads(t, p.name, p.cmd.Process.Pid, ready)
	}
	checkSelf(t, self)
}
