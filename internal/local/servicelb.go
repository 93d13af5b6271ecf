package local

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/smek/action/internal/logkey"
)

// serveLoadBalancers does ServiceLB's part for a node: every Service of
// type LoadBalancer gets the node's address as its ingress, and kube-proxy
// on the node answers there on the Service's ports (80 and 443 as any
// other). The node's address is reachable from the host, as k3s's node
// address is from the Internet. It runs until ctx ends.
func serveLoadBalancers(ctx context.Context, cs kubernetes.Interface, nodeIP netip.Addr, log *slog.Logger) {
	factory := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	inf := factory.Core().V1().Services().Informer()
	sync := func(obj any) {
		svc, ok := obj.(*corev1.Service)
		if !ok || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			return
		}
		if svc.Spec.LoadBalancerClass != nil {
			return // another implementation's, as ServiceLB leaves them
		}
		ing := svc.Status.LoadBalancer.Ingress
		if len(ing) == 1 && ing[0].IP == nodeIP.String() {
			return
		}
		svc = svc.DeepCopy()
		mode := corev1.LoadBalancerIPModeVIP
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: nodeIP.String(), IPMode: &mode}}
		if _, err := cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
			// The informer's next event or resync tries again.
			log.Warn("set a LoadBalancer's address", "service", svc.Namespace+"/"+svc.Name, logkey.Err, err)
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    sync,
		UpdateFunc: func(_, obj any) { sync(obj) },
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
