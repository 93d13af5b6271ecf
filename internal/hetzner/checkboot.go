package hetzner

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/cluster"
)

// boot creates a server from img the way the pool does, runs the
// cluster's checks on it and deletes it, also when a step fails or ctx
// ends.
func (c *checker) boot(ctx context.Context, img *hcloud.Image) {
	b := c.b
	steps := []string{stepCreate, stepSSH, stepK3s, stepCoreDNS, stepPVC, stepLB}
	done := 0
	m := cluster.Member{
		ID:     "check-" + strings.ToLower(rand.Text()[:6]),
		Flavor: cluster.Flavor{K8sVersion: img.Labels[LabelK8sVersion], Size: c.cc.Size},
		State:  cluster.MemberCreating,
	}
	var srv *hcloud.Server
	var t0 time.Time
	defer func() {
		// Whatever happened above, the server goes: with a context of its
		// own, since ctx may be what ended.
		c.skip(steps[done:]...)
		if t0.IsZero() {
			c.report(stepDelete, CheckSkip, "no server was created")
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		c.remove(dctx, m, srv, t0)
	}()
	next := func(s CheckStep) bool {
		c.res.Steps = append(c.res.Steps, s)
		if c.cc.Report != nil {
			c.cc.Report(s)
		}
		done++
		return s.Status != CheckFail && ctx.Err() == nil
	}
	stype, ok := b.cfg.ServerTypes[c.cc.Size]
	if !ok {
		next(step(stepCreate, CheckFail, "cluster size %s has no server type", c.cc.Size))
		return
	}
	key, err := b.ensureSSHKey(ctx)
	if err == nil {
		err = b.ensureFirewall(ctx)
	}
	if err != nil {
		next(step(stepCreate, CheckFail, "%v", err))
		return
	}
	t0 = b.cfg.Clock.Now()
	srv, err = b.create(ctx, m, img, stype, key)
	if err != nil {
		next(step(stepCreate, CheckFail, "%v", err))
		return
	}
	c.res.ServerID = srv.ID
	loc := "?"
	if srv.Location != nil {
		loc = srv.Location.Name
	}
	if !next(step(stepCreate, CheckOK, "server %d %s (%s in %s, from image %d) running after %s", srv.ID, srv.Name, stype, loc, img.ID, since(b, t0))) {
		return
	}
	d := data{ServerID: srv.ID, Name: srv.Name, IP: srv.PublicNet.IPv4.IP.String(), Image: img.ID, Timings: map[string]int64{}}
	if !next(c.ssh(ctx, srv, &d)) {
		return
	}
	t := b.cfg.Clock.Now()
	if err := b.node.bootstrap(ctx, m, srv, &d); err != nil {
		next(step(stepK3s, CheckFail, "%v", err))
		return
	}
	if !next(step(stepK3s, CheckOK, "API %s ready (node Ready, default service account, CoreDNS, local-path default storage class) after %s", d.APIServer, since(b, t))) {
		return
	}
	admin, err := b.adminConfig(m, d)
	var cs *kubernetes.Clientset
	if err == nil {
		cs, err = kubernetes.NewForConfig(admin)
	}
	if err != nil {
		next(step(stepCoreDNS, CheckFail, "admin credential: %v", err))
		return
	}
	// The cluster's checks do not depend on each other: all run, so that
	// one paid server hour tells everything.
	for _, check := range []func(context.Context, *kubernetes.Clientset, *hcloud.Server) CheckStep{c.coreDNS, c.pvc, c.loadBalancer} {
		if next(check(ctx, cs, srv)); ctx.Err() != nil {
			return
		}
	}
}

// remove deletes the check's server (found by name when the create's
// answer never came) and reports what it cost.
func (c *checker) remove(ctx context.Context, m cluster.Member, srv *hcloud.Server, t0 time.Time) {
	b := c.b
	if srv == nil {
		found, err := b.getByName(ctx, b.serverName(m))
		if err != nil {
			c.report(stepDelete, CheckFail, "look for server %s: %v; delete it by hand (the reconciler deletes it after %s)", b.serverName(m), err, b.cfg.OrphanGrace)
			return
		}
		if found == nil {
			c.report(stepDelete, CheckOK, "no server %s was made", b.serverName(m))
			return
		}
		srv = found
		c.res.ServerID = srv.ID
	}
	err := b.delete(ctx, srv)
	secs := b.cfg.Clock.Now().Sub(t0).Seconds()
	c.res.ServerSeconds = math.Round(secs*10) / 10
	c.res.BilledHours = max(1, int(math.Ceil(secs/3600)))
	cost := fmt.Sprintf("%.1f server-seconds, billed as %d started hour(s)", c.res.ServerSeconds, c.res.BilledHours)
	loc := b.cfg.Locations[0]
	if srv.Location != nil {
		loc = srv.Location.Name
	}
	if p, ok := c.prices[loc]; ok {
		if f, perr := strconv.ParseFloat(p, 64); perr == nil {
			c.res.HourlyPrice = trimPrice(p)
			c.res.Cost = strconv.FormatFloat(f*float64(c.res.BilledHours), 'f', 4, 64)
			cost += fmt.Sprintf(" × %s = %s gross (the account's currency)", c.res.HourlyPrice, c.res.Cost)
		}
	}
	if err != nil {
		c.report(stepDelete, CheckFail, "server %d: %v; delete it by hand (the reconciler deletes it after %s); %s", srv.ID, err, b.cfg.OrphanGrace, cost)
		return
	}
	c.report(stepDelete, CheckOK, "server %d deleted; %s", srv.ID, cost)
}

// ssh logs in as the bootstrap does and asks the server which address it
// sees this machine at ($SSH_CLIENT): behind NAT only the server can tell
// the public address the firewall must admit.
func (c *checker) ssh(ctx context.Context, srv *hcloud.Server, d *data) CheckStep {
	b := c.b
	var rules []netip.Prefix
	if b.cfg.Firewall != "" {
		if fw, err := c.b.getFirewall(ctx); err == nil && fw != nil {
			rules = firewallSSHSources(fw)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	t := b.cfg.Clock.Now()
	conn, err := b.dial(sctx, srv, d)
	if err != nil {
		if b.cfg.Firewall != "" {
			return step(stepSSH, CheckFail, "no login within %s (%v): firewall %s admits SSH from %s; is this machine's public address among them? (see it with: curl -s https://ipv4.icanhazip.com)", b.cfg.ReadyTimeout, err, b.cfg.Firewall, prefixList(rules))
		}
		return step(stepSSH, CheckFail, "no login within %s: %v", b.cfg.ReadyTimeout, err)
	}
	defer conn.Close()
	took := since(b, t)
	var out bytes.Buffer
	if err := runSSH(sctx, conn, `echo "$SSH_CLIENT"`, nil, &out); err != nil {
		return step(stepSSH, CheckWarn, "logged in after %s, but could not read $SSH_CLIENT on the server (%v): cannot tell which address the firewall sees", took, err)
	}
	st, detail := sshClientVerdict(out.String(), b.cfg.Firewall, rules)
	return step(stepSSH, st, "logged in after %s: %s", took, detail)
}

// sshClientVerdict judges the server's $SSH_CLIENT ("ip port 22"): the
// address it sees this machine at should be one the firewall admits to
// port 22 (rules); a login from elsewhere means the firewall is not in
// force.
func sshClientVerdict(sshClient, firewall string, rules []netip.Prefix) (CheckStatus, string) {
	seen, err := netip.ParseAddr(strings.Fields(sshClient + " ?")[0])
	if err != nil {
		return CheckWarn, fmt.Sprintf("the server's $SSH_CLIENT is %q, not an address", strings.TrimSpace(sshClient))
	}
	seen = seen.Unmap()
	if firewall == "" {
		return CheckOK, fmt.Sprintf("the server sees this machine as %s (no firewall)", seen)
	}
	if i := slices.IndexFunc(rules, func(p netip.Prefix) bool { return p.Contains(seen) }); i >= 0 {
		return CheckOK, fmt.Sprintf("the server sees this machine as %s, admitted by firewall %s (22 from %s)", seen, firewall, rules[i])
	}
	return CheckWarn, fmt.Sprintf("the server sees this machine as %s, which firewall %s does not admit to 22 (%s): is the firewall applied?", seen, firewall, prefixList(rules))
}

func (c *checker) coreDNS(ctx context.Context, cs *kubernetes.Clientset, _ *hcloud.Server) CheckStep {
	dep, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return step(stepCoreDNS, CheckFail, "get kube-system/coredns: %v", err)
	}
	if dep.Status.AvailableReplicas < 1 {
		return step(stepCoreDNS, CheckFail, "kube-system/coredns has no available replica")
	}
	return step(stepCoreDNS, CheckOK, "kube-system/coredns available (%d/%d)", dep.Status.AvailableReplicas, dep.Status.Replicas)
}

// pvc claims a volume of the default storage class with a consumer pod
// and waits until the claim is bound and the pod runs: the local-path
// provisioner's helper pods met the cluster's admission.
func (c *checker) pvc(ctx context.Context, cs *kubernetes.Clientset, _ *hcloud.Server) CheckStep {
	b := c.b
	if err := c.ensureNamespace(ctx, cs); err != nil {
		return step(stepPVC, CheckFail, "%v", err)
	}
	t := b.cfg.Clock.Now()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "check", Namespace: checkNS},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(checkNS).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		return step(stepPVC, CheckFail, "create claim: %v", err)
	}
	pod := checkPod("check-pvc", c.cc.Image, []string{"sh", "-c", "echo ok > /data/ok && sleep 3600"})
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "check"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := cs.CoreV1().Pods(checkNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return step(stepPVC, CheckFail, "create consumer pod: %v", err)
	}
	var pv string
	err := c.poll(ctx, func() (bool, error) {
		got, err := cs.CoreV1().PersistentVolumeClaims(checkNS).Get(ctx, "check", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
		pv = got.Spec.VolumeName
		p, err := cs.CoreV1().Pods(checkNS).Get(ctx, "check-pvc", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		return step(stepPVC, CheckFail, "claim %s/check not bound with a running consumer within %s%s", checkNS, b.cfg.ReadyTimeout, lastEvents(ctx, cs, "check", "check-pvc"))
	}
	return step(stepPVC, CheckOK, "claim %s/check bound to %s, consumer pod running, after %s", checkNS, pv, since(b, t))
}

// loadBalancer runs `httpd -f -p 8080` behind a LoadBalancer Service on
// port 80 and asks it over HTTP from here, at the server's public address.
// Any HTTP answer will do: it came through the firewall and ServiceLB.
func (c *checker) loadBalancer(ctx context.Context, cs *kubernetes.Clientset, srv *hcloud.Server) CheckStep {
	b := c.b
	if err := c.ensureNamespace(ctx, cs); err != nil {
		return step(stepLB, CheckFail, "%v", err)
	}
	t := b.cfg.Clock.Now()
	pod := checkPod(checkHTTPPod, c.cc.Image, []string{"httpd", "-f", "-p", "8080"})
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	if _, err := cs.CoreV1().Pods(checkNS).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return step(stepLB, CheckFail, "create pod: %v", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: checkHTTPPod, Namespace: checkNS},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": checkHTTPPod},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := cs.CoreV1().Services(checkNS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return step(stepLB, CheckFail, "create service: %v", err)
	}
	var ingress []string
	err := c.poll(ctx, func() (bool, error) {
		got, err := cs.CoreV1().Services(checkNS).Get(ctx, checkHTTPPod, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ingress = ingress[:0]
		for _, in := range got.Status.LoadBalancer.Ingress {
			ingress = append(ingress, in.IP+in.Hostname)
		}
		return len(ingress) > 0, nil
	})
	if err != nil {
		return step(stepLB, CheckFail, "service %s/%s got no load balancer address within %s (is ServiceLB disabled?)%s", checkNS, checkHTTPPod, b.cfg.ReadyTimeout, lastEvents(ctx, cs, checkHTTPPod))
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	var addr, answer string
	err = c.poll(ctx, func() (bool, error) {
		var err error
		if addr, err = c.cc.PortAddr(ctx, srv, 80); err != nil || addr == "" {
			return false, nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			answer = err.Error()
			return false, nil
		}
		resp.Body.Close()
		answer = resp.Status
		return true, nil
	})
	public := srv.PublicNet.IPv4.IP.String()
	if err != nil {
		return step(stepLB, CheckFail, "service %s/%s has address %s, but http://%s:80/ gave no HTTP answer within %s (last: %s)", checkNS, checkHTTPPod, strings.Join(ingress, ", "), public, b.cfg.ReadyTimeout, answer)
	}
	status := CheckOK
	note := ""
	if !slices.Contains(ingress, public) {
		status, note = CheckWarn, fmt.Sprintf(" (its status names %s, not the server's public address)", strings.Join(ingress, ", "))
	}
	return step(stepLB, status, "service %s/%s on port 80%s: http://%s:80/ answered %q after %s", checkNS, checkHTTPPod, note, public, answer, since(b, t))
}

func checkPod(name, image string, command []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: checkNS, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "main", Image: image, Command: command}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
}

// ensureNamespace makes the check's namespace and waits for its default
// ServiceAccount: until the controller made it, pods are refused.
func (c *checker) ensureNamespace(ctx context.Context, cs *kubernetes.Clientset) error {
	if _, err := cs.CoreV1().Namespaces().Get(ctx, checkNS, metav1.GetOptions{}); err != nil {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: checkNS}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", checkNS, err)
		}
	}
	err := c.poll(ctx, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(checkNS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the service account %s/default: %w", checkNS, err)
	}
	return nil
}

// lastEvents quotes the latest events of the named objects in the
// check's namespace: why a claim stays pending or a pod does not start.
func lastEvents(ctx context.Context, cs *kubernetes.Clientset, names ...string) string {
	evs, err := cs.CoreV1().Events(checkNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	items := slices.DeleteFunc(evs.Items, func(e corev1.Event) bool { return !slices.Contains(names, e.InvolvedObject.Name) })
	if len(items) == 0 {
		return ""
	}
	slices.SortFunc(items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
	var s []string
	for _, e := range items[max(0, len(items)-3):] {
		s = append(s, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
	}
	return "; events: " + strings.Join(s, "; ")
}

// poll calls ok every half second until it is true, fails, or
// ReadyTimeout passes.
func (c *checker) poll(ctx context.Context, ok func() (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, c.b.cfg.ReadyTimeout, true,
		func(context.Context) (bool, error) { return ok() })
}

func since(b *Backend, t time.Time) time.Duration {
	return b.cfg.Clock.Now().Sub(t).Round(100 * time.Millisecond)
}

// trimPrice drops trailing zeros of a price ("0.0952000000" → "0.0952").
func trimPrice(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	p = strings.TrimRight(p, "0")
	return strings.TrimSuffix(p, ".")
}
