package k3snode

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/logkey"
)

// ServiceLB as k3s's embedded controller plays it (k3s
// pkg/cloudprovider/servicelb.go): for every LoadBalancer Service a
// DaemonSet svclb-<name>-<uid[:8]> in kube-system whose pods hold the
// Service's ports as host ports (klipper-lb forwards them to the
// Service's cluster IP), and the Service's status lists the addresses of
// the nodes whose svclb pod is ready (external addresses if any node has
// one, else internal ones).
const (
	svcNameLabel      = "svccontroller.k3s.cattle.io/svcname"
	svcNamespaceLabel = "svccontroller.k3s.cattle.io/svcnamespace"
	nodeSelectorLabel = "svccontroller.k3s.cattle.io/nodeselector"
	svclbImage        = "rancher/klipper-lb:v0.4.13"
)

// runServiceLB reconciles LoadBalancer Services every 300 ms until ctx
// ends.
func runServiceLB(ctx context.Context, admin *rest.Config, log *slog.Logger) {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return
	}
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := syncServiceLB(ctx, cs); err != nil && ctx.Err() == nil {
			log.Debug("servicelb", logkey.Err, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func syncServiceLB(ctx context.Context, cs kubernetes.Interface) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "svclb", Namespace: "kube-system"}}
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	dss, err := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: svcNameLabel})
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil {
			continue
		}
		ds := svclbDaemonSet(svc)
		want[ds.Name] = true
		got, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, ds.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = cs.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{})
		case err == nil && !equality.Semantic.DeepEqual(got.Spec.Template.Spec.Containers, ds.Spec.Template.Spec.Containers):
			got.Spec.Template = ds.Spec.Template
			_, err = cs.AppsV1().DaemonSets("kube-system").Update(ctx, got, metav1.UpdateOptions{})
		}
		if err != nil {
			return err
		}
		if err := updateLBStatus(ctx, cs, svc); err != nil {
			return err
		}
	}
	for _, ds := range dss.Items {
		if !want[ds.Name] {
			if err := cs.AppsV1().DaemonSets("kube-system").Delete(ctx, ds.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// svclbDaemonSet is the DaemonSet k3s makes for a LoadBalancer Service.
func svclbDaemonSet(svc *corev1.Service) *appsv1.DaemonSet {
	name := svc.Name
	if len(name) > 48 {
		name = strings.TrimRight(name[:48], "-")
	}
	name = fmt.Sprintf("svclb-%s-%s", name, string(svc.UID)[:8])
	one := intstr.FromInt32(1)
	no := false
	sc := &corev1.PodSecurityContext{}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: "net.ipv4.ip_forward", Value: "1"})
		case corev1.IPv6Protocol:
			sc.Sysctls = append(sc.Sysctls, corev1.Sysctl{Name: "net.ipv6.conf.all.forwarding", Value: "1"})
		}
	}
	ranges := "0.0.0.0/0"
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		ranges = strings.Join(svc.Spec.LoadBalancerSourceRanges, ",")
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Labels: map[string]string{
			nodeSelectorLabel: "false", svcNameLabel: svc.Name, svcNamespaceLabel: svc.Namespace,
		}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, svcNameLabel: svc.Name, svcNamespaceLabel: svc.Namespace}},
				Spec: corev1.PodSpec{
					PriorityClassName: "system-node-critical", ServiceAccountName: "svclb", AutomountServiceAccountToken: &no,
					SecurityContext: sc,
					Tolerations: []corev1.Toleration{
						{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
					},
				},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one}},
		},
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		pn := fmt.Sprintf("lb-%s-%d", strings.ToLower(string(proto)), p.Port)
		ds.Spec.Template.Spec.Containers = append(ds.Spec.Template.Spec.Containers, corev1.Container{
			Name: pn, Image: svclbImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Ports: []corev1.ContainerPort{{Name: pn, ContainerPort: p.Port, HostPort: p.Port, Protocol: proto}},
			Env: []corev1.EnvVar{
				{Name: "SRC_PORT", Value: strconv.Itoa(int(p.Port))},
				{Name: "SRC_RANGES", Value: ranges},
				{Name: "DEST_PROTO", Value: string(proto)},
				{Name: "DEST_PORT", Value: strconv.Itoa(int(p.Port))},
				{Name: "DEST_IPS", Value: strings.Join(svc.Spec.ClusterIPs, ",")},
			},
			SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}},
		})
	}
	return ds
}

// updateLBStatus sets the Service's ingress to the addresses of the nodes
// whose svclb pod is ready.
func updateLBStatus(ctx context.Context, cs kubernetes.Interface, svc *corev1.Service) error {
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: svcNameLabel + "=" + svc.Name + "," + svcNamespaceLabel + "=" + svc.Namespace,
	})
	if err != nil {
		return err
	}
	var ext, internal []string
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		node, err := cs.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			continue
		}
		for _, a := range node.Status.Addresses {
			switch a.Type {
			case corev1.NodeExternalIP:
				ext = append(ext, a.Address)
			case corev1.NodeInternalIP:
				internal = append(internal, a.Address)
			}
		}
	}
	ips := internal
	if len(ext) > 0 {
		ips = ext
	}
	slices.Sort(ips)
	ips = slices.Compact(ips)
	var ingress []corev1.LoadBalancerIngress
	for _, ip := range ips {
		if (net.ParseIP(ip).To4() != nil) == slices.Contains(svc.Spec.IPFamilies, corev1.IPv4Protocol) ||
			(net.ParseIP(ip).To4() == nil) == slices.Contains(svc.Spec.IPFamilies, corev1.IPv6Protocol) {
			ingress = append(ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
	if equality.Semantic.DeepEqual(ingress, svc.Status.LoadBalancer.Ingress) {
		return nil
	}
	svc.Status.LoadBalancer.Ingress = ingress
	_, err = cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// openHostPort opens a container's host port on the machine's public
// interface (through the firewall, nic.go) and relays each connection as
// the packet path would: klipper-lb (DEST_IPS, DEST_PORT) to the
// Service and on to a ready endpoint, a plain host port to the pod's own
// container port. Only TCP is simulated.
func (kl *kubelet) openHostPort(ctx context.Context, p *corev1.Pod, r *podRuntime, c corev1.Container, cp corev1.ContainerPort, env map[string]string) error {
	if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP {
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	target := func() (string, error) {
		if ips, ok := env["DEST_IPS"]; ok {
			port, _ := strconv.Atoi(env["DEST_PORT"])
			return kl.serviceTarget(ctx, strings.Split(ips, ","), int32(port))
		}
		return kl.serverAt(fmt.Sprintf("%s:%d", r.ip, cp.ContainerPort))
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				t, err := target()
				if err != nil {
					conn.Close() // nothing listens there: the connection is reset
					return
				}
				relay(conn, t)
			}()
		}
	}()
	r.stops = append(r.stops, func() { l.Close() })
	if !kl.lockNode(ctx) {
		return ctx.Err()
	}
	defer kl.n.mu.Unlock()
	if kl.n.k3s != kl.k {
		return fmt.Errorf("k3s is stopping")
	}
	if err := kl.n.forward(int(cp.HostPort), l.Addr().String()); err != nil {
		return err
	}
	r.hostPorts = append(r.hostPorts, int(cp.HostPort))
	return nil
}

func (kl *kubelet) serverAt(addr string) (string, error) {
	kl.mu.Lock()
	defer kl.mu.Unlock()
	s, ok := kl.servers[addr]
	if !ok {
		return "", fmt.Errorf("connection refused: nothing listens on %s", addr)
	}
	return s, nil
}

// serviceTarget plays kube-proxy: the Service with one of clusterIPs,
// its port, a ready endpoint of that port.
func (kl *kubelet) serviceTarget(ctx context.Context, clusterIPs []string, port int32) (string, error) {
	svcs, err := kl.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, svc := range svcs.Items {
		if !slices.Contains(clusterIPs, svc.Spec.ClusterIP) {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if sp.Port != port {
				continue
			}
			slices, err := kl.cs.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
			if err != nil {
				return "", err
			}
			for _, s := range slices.Items {
				for _, ep := range s.Endpoints {
					if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || len(ep.Addresses) == 0 {
						continue
					}
					for _, ps := range s.Ports {
						if ps.Port == nil || (ps.Name != nil && *ps.Name != sp.Name) {
							continue
						}
						if t, err := kl.serverAt(fmt.Sprintf("%s:%d", ep.Addresses[0], *ps.Port)); err == nil {
							return t, nil
						}
					}
				}
			}
		}
	}
	return "", fmt.Errorf("no ready endpoint serves %v:%d", clusterIPs, port)
}
