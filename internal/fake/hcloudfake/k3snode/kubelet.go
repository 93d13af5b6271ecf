package k3snode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/logkey"
)

// The stand-in kubelet (and scheduler) of the simulated node. It runs no
// containers; it plays the part of the few it knows and reports every
// other one running:
//
//   - `local-path-provisioner start ...` (k3s's local-storage component)
//     runs as a process from the Kubernetes binaries folder, with its
//     ConfigMap volume on the node's disk and a token of its
//     ServiceAccount, so it acts with exactly its own rights;
//   - `sh SCRIPT` where SCRIPT comes from a ConfigMap volume (the
//     provisioner's helper pods) is interpreted (script.go) against the
//     pod's hostPath volumes on the node's disk; the pod then Succeeds or
//     Fails with the script's exit status;
//   - busybox `httpd -f -p PORT` serves HTTP in process (404 for
//     everything, as httpd on an empty folder) at the pod's address;
//   - a container port with a hostPort (ServiceLB's svclb pods) opens that
//     public port of the machine (nic.go), relaying as klipper-lb and
//     kube-proxy would to a ready endpoint of the Service (servicelb.go).
//
// As the scheduler's volume binding does, a pending pod whose claim waits
// for its first consumer gets the claim annotated with the node and is
// bound only once the claim is. Pods being deleted are finalized (their
// runtimes stopped, then the object removed), as the kubelet does.
type kubelet struct {
	n     *Node
	k     *k3s
	admin *rest.Config
	cs    kubernetes.Interface
	node  string

	// mu guards everything below.
	mu      sync.Mutex
	pods    map[types.UID]*podRuntime
	servers map[string]string // pod address "ip:port" → loopback address of its server
	nextIP  int
}

// podRuntime is what the kubelet started for one pod.
type podRuntime struct {
	ip        string
	hostPorts []int
	stops     []func()
}

func (r *podRuntime) stop() {
	for _, s := range r.stops {
		s()
	}
}

func newKubelet(n *Node, k *k3s, admin *rest.Config, node string) *kubelet {
	cs, _ := kubernetes.NewForConfig(admin)
	return &kubelet{n: n, k: k, admin: admin, cs: cs, node: node, pods: map[types.UID]*podRuntime{}, servers: map[string]string{}, nextIP: 1}
}

// run registers the node, then syncs pods every 200 ms until ctx ends.
func (kl *kubelet) run(ctx context.Context, nodeLabels []string) {
	labels := map[string]string{"node-role.kubernetes.io/control-plane": "true", "node.kubernetes.io/instance-type": "k3s"}
	for _, l := range nodeLabels {
		key, v, _ := strings.Cut(l, "=")
		labels[key] = v
	}
	a, err := kube.NewAdmin(kl.admin)
	if err != nil {
		kl.n.log.Warn("kubelet", logkey.Err, err)
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	registered := false
	for {
		if !registered {
			if err := a.RegisterNode(ctx, kl.node, labels); err != nil {
				kl.n.log.Debug("register node", logkey.Err, err)
			} else if err := kl.untaint(ctx); err != nil {
				kl.n.log.Debug("untaint node", logkey.Err, err)
			} else {
				registered = true
			}
		}
		if registered {
			kl.sync(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// untaint removes the node.kubernetes.io/not-ready taint that admission
// (TaintNodesByCondition) puts on a new node, as the node lifecycle
// controller does once the node reports Ready; DaemonSets and the
// scheduler honour it.
func (kl *kubelet) untaint(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := kl.cs.CoreV1().Nodes().Get(ctx, kl.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		kept := node.Spec.Taints[:0]
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = kept
		_, err = kl.cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

func (kl *kubelet) sync(ctx context.Context) {
	pods, err := kl.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	seen := map[types.UID]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		seen[p.UID] = true
		if p.Spec.NodeName != "" && p.Spec.NodeName != kl.node {
			continue
		}
		var err error
		switch {
		case p.DeletionTimestamp != nil:
			err = kl.finalize(ctx, p)
		case p.Spec.NodeName == "":
			err = kl.schedule(ctx, p)
		case !kl.started(p.UID) && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning || p.Status.Phase == ""):
			// New pods, and running ones after a restart of k3s.
			err = kl.start(ctx, p)
		}
		if err != nil && ctx.Err() == nil {
			kl.n.log.Debug("kubelet", logkey.Pod, p.Namespace+"/"+p.Name, logkey.Err, err)
		}
	}
	kl.mu.Lock()
	var gone []types.UID
	for uid := range kl.pods {
		if !seen[uid] {
			gone = append(gone, uid)
		}
	}
	kl.mu.Unlock()
	for _, uid := range gone {
		kl.release(ctx, uid)
	}
}

func (kl *kubelet) started(uid types.UID) bool {
	kl.mu.Lock()
	defer kl.mu.Unlock()
	_, ok := kl.pods[uid]
	return ok
}

// finalize stops what runs for a pod being deleted and removes it, as the
// kubelet does once its containers have stopped.
func (kl *kubelet) finalize(ctx context.Context, p *corev1.Pod) error {
	kl.release(ctx, p.UID)
	zero := int64(0)
	uid := p.UID
	err := kl.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// release stops the runtime of a pod and closes its host ports.
func (kl *kubelet) release(ctx context.Context, uid types.UID) {
	kl.mu.Lock()
	r := kl.pods[uid]
	delete(kl.pods, uid)
	if r != nil {
		for addr := range kl.servers {
			if strings.HasPrefix(addr, r.ip+":") {
				delete(kl.servers, addr)
			}
		}
	}
	kl.mu.Unlock()
	if r == nil {
		return
	}
	r.stop()
	if len(r.hostPorts) > 0 && kl.lockNode(ctx) {
		if kl.n.k3s == kl.k {
			for _, hp := range r.hostPorts {
				_ = kl.n.unlisten(hp)
			}
		}
		kl.n.mu.Unlock()
	}
}

// stopAll stops every pod's runtime (k3s is stopping). Host ports are
// closed by whoever stops k3s, which holds n.mu.
func (kl *kubelet) stopAll() {
	kl.mu.Lock()
	pods := kl.pods
	kl.pods = map[types.UID]*podRuntime{}
	kl.servers = map[string]string{}
	kl.mu.Unlock()
	for _, r := range pods {
		r.stop()
	}
}

// hostPorts lists the public ports pods hold open.
func (kl *kubelet) hostPorts() []int {
	kl.mu.Lock()
	defer kl.mu.Unlock()
	var out []int
	for _, r := range kl.pods {
		out = append(out, r.hostPorts...)
	}
	return out
}

// lockNode takes n.mu unless ctx ends first: whoever stops k3s may hold
// n.mu while waiting for the kubelet to return.
func (kl *kubelet) lockNode(ctx context.Context) bool {
	for !kl.n.mu.TryLock() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// schedule binds a pending pod to the node once its claims allow it: a
// claim of a WaitForFirstConsumer class is annotated with the node
// (volume.kubernetes.io/selected-node, as the scheduler's volume binding
// does) and the pod waits until the claim is bound.
func (kl *kubelet) schedule(ctx context.Context, p *corev1.Pod) error {
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		claim, err := kl.cs.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if err != nil {
			return err // unschedulable until the claim exists
		}
		if claim.Status.Phase == corev1.ClaimBound {
			continue
		}
		if claim.Annotations["volume.kubernetes.io/selected-node"] == kl.node {
			return nil // provisioning
		}
		if !kl.waitsForConsumer(ctx, claim) {
			return nil // bound by the PV controller, or never
		}
		if claim.Annotations == nil {
			claim.Annotations = map[string]string{}
		}
		claim.Annotations["volume.kubernetes.io/selected-node"] = kl.node
		if _, err := kl.cs.CoreV1().PersistentVolumeClaims(p.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
			return err
		}
		return nil
	}
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: kl.node},
	}
	return kl.cs.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{})
}

func (kl *kubelet) waitsForConsumer(ctx context.Context, claim *corev1.PersistentVolumeClaim) bool {
	name := ""
	if claim.Spec.StorageClassName != nil {
		name = *claim.Spec.StorageClassName
	}
	if name == "" {
		return false
	}
	sc, err := kl.cs.StorageV1().StorageClasses().Get(ctx, name, metav1.GetOptions{})
	return err == nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// start plays the pod's containers and reports its status.
func (kl *kubelet) start(ctx context.Context, p *corev1.Pod) error {
	kl.mu.Lock()
	ip := p.Status.PodIP
	if ip == "" {
		kl.nextIP++
		ip = fmt.Sprintf("10.42.%d.%d", kl.nextIP/250, kl.nextIP%250+2)
	}
	r := &podRuntime{ip: ip}
	kl.pods[p.UID] = r
	kl.mu.Unlock()

	now := metav1.Now()
	var statuses []corev1.ContainerStatus
	phase, finished, failed := corev1.PodRunning, 0, false
	for _, c := range p.Spec.Containers {
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
		exit, done, err := kl.runContainer(ctx, p, r, c)
		switch {
		case err != nil:
			kl.n.log.Warn("kubelet: container", logkey.Pod, p.Namespace+"/"+p.Name, "container", c.Name, logkey.Err, err)
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
			phase = corev1.PodPending
		case done:
			finished++
			failed = failed || exit != 0
			reason := "Completed"
			if exit != 0 {
				reason = "Error"
			}
			st.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(exit), Reason: reason, StartedAt: now, FinishedAt: now}
		default:
			started := true
			st.Ready, st.Started = true, &started
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
		}
		statuses = append(statuses, st)
	}
	if finished == len(p.Spec.Containers) && p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		phase = corev1.PodSucceeded
		if failed {
			phase = corev1.PodFailed
		}
	}
	p.Status.Phase = phase
	p.Status.HostIP = "127.0.0.1"
	p.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.ContainerStatuses = statuses
	ready := corev1.ConditionFalse
	if phase == corev1.PodRunning {
		ready = corev1.ConditionTrue
	}
	p.Status.Conditions = nil
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		s := corev1.ConditionTrue
		if c == corev1.ContainersReady || c == corev1.PodReady {
			s = ready
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: s, LastTransitionTime: now})
	}
	if _, err := kl.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		kl.release(ctx, p.UID)
		return err
	}
	return nil
}

// runContainer plays one container: done reports that it has exited with
// exit; otherwise it keeps running.
func (kl *kubelet) runContainer(ctx context.Context, p *corev1.Pod, r *podRuntime, c corev1.Container) (exit int, done bool, err error) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	env, err := kl.env(p, c)
	if err != nil {
		return 0, false, err
	}
	fs := &podFS{kl: kl, p: p, c: c}
	if err := fs.prepareHostPaths(); err != nil {
		return 0, false, err
	}
	for _, cp := range c.Ports {
		if cp.HostPort == 0 {
			continue
		}
		if err := kl.openHostPort(ctx, p, r, c, cp, env); err != nil {
			return 0, false, err
		}
	}
	if len(argv) == 0 {
		return 0, false, nil
	}
	switch prog := path.Base(argv[0]); {
	case (prog == "sh" || prog == "bash") && len(argv) >= 2 && !strings.HasPrefix(argv[1], "-") && fs.fromConfigMap(argv[1]):
		script, err := fs.read(argv[1])
		if err != nil {
			return 127, true, nil
		}
		out := runScript(string(script), env, fs)
		kl.n.log.Debug("kubelet: script", logkey.Pod, p.Namespace+"/"+p.Name, "exit", out.exit, "stderr", out.stderr)
		return out.exit, true, nil
	case prog == "local-path-provisioner":
		return 0, false, kl.runProvisioner(ctx, p, r, c, argv, env, fs)
	case prog == "httpd":
		port, ok := httpdPort(argv[1:])
		if !ok {
			return 0, false, nil
		}
		addr, stop, err := serveHTTPD()
		if err != nil {
			return 0, false, err
		}
		r.stops = append(r.stops, stop)
		kl.mu.Lock()
		kl.servers[fmt.Sprintf("%s:%d", r.ip, port)] = addr
		kl.mu.Unlock()
	}
	return 0, false, nil
}

// env resolves a container's environment: values, and the field
// references the simulation can answer.
func (kl *kubelet) env(p *corev1.Pod, c corev1.Container) (map[string]string, error) {
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": p.Name}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.namespace":
				env[e.Name] = p.Namespace
			case "metadata.name":
				env[e.Name] = p.Name
			case "spec.nodeName":
				env[e.Name] = kl.node
			case "spec.serviceAccountName":
				env[e.Name] = p.Spec.ServiceAccountName
			case "status.hostIP", "status.hostIPs":
				env[e.Name] = "127.0.0.1"
			default:
				return nil, fmt.Errorf("env %s: field %s is not simulated", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		default:
			return nil, fmt.Errorf("env %s: only values and field references are simulated", e.Name)
		}
	}
	return env, nil
}

// runProvisioner runs local-path-provisioner as a process on the node:
// its ConfigMap volumes written to the pod's folder, paths of its
// arguments under a mount mapped there, and a kubeconfig with a token of
// the pod's ServiceAccount.
func (kl *kubelet) runProvisioner(ctx context.Context, p *corev1.Pod, r *podRuntime, c corev1.Container, argv []string, env map[string]string, fs *podFS) error {
	bin := filepath.Join(kl.n.cfg.KubeBin, "local-path-provisioner")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("image %s: %s is missing (make kube-bin builds it)", c.Image, bin)
	}
	dir, err := kl.n.path(fmt.Sprintf("/var/lib/kubelet/pods/%s", p.UID))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	args := make([]string, 0, len(argv)-1)
	for _, a := range argv[1:] {
		if full, ok, err := fs.materialize(a, dir); err != nil {
			return err
		} else if ok {
			a = full
		}
		args = append(args, a)
	}
	kc, err := kl.serviceAccountKubeconfig(ctx, p)
	if err != nil {
		return err
	}
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, c.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"KUBECONFIG=" + kcPath}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	r.stops = append(r.stops, func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return nil
}

// serviceAccountKubeconfig is what a pod's projected token and the
// in-cluster configuration give it: the API server and a token of its
// ServiceAccount, bound to the pod.
func (kl *kubelet) serviceAccountKubeconfig(ctx context.Context, p *corev1.Pod) ([]byte, error) {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	expiry := int64(24 * 3600)
	tr, err := kl.cs.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &expiry,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for %s/%s: %w", p.Namespace, sa, err)
	}
	cfg := &rest.Config{Host: kl.admin.Host, BearerToken: tr.Status.Token}
	cfg.TLSClientConfig.CAData = kl.admin.TLSClientConfig.CAData
	return tokenKubeconfig(cfg)
}
