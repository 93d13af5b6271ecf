package policy_test

import (
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"log/slog"
	"os"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// testPod is a pod that meets the Restricted standard; mutate makes it an
// attack.
func testPod(name, ns string, mutate func(*corev1.Pod)) *corev1.Pod {
	no, yes := false, true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   &yes,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "c",
				Image: "registry.k8s.io/pause:3.10",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// Pod mutations the Baseline standard forbids.

func privileged(p *corev1.Pod) {
	yes := true
	p.Spec.Containers[0].SecurityContext.Privileged = &yes
	p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
}

func hostPath(p *corev1.Pod) {
	p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "root", MountPath: "/host"}}
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }
func hostPID(p *corev1.Pod)     { p.Spec.HostPID = true }
func hostIPC(p *corev1.Pod)     { p.Spec.HostIPC = true }

func hostPort(p *corev1.Pod) {
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}}
}

func addCapability(c corev1.Capability) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{c}}
	}
}

func unsafeSysctl(p *corev1.Pod) {
	p.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}}
}

func appArmorUnconfined(p *corev1.Pod) {
	p.Spec.Containers[0].SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
}

func seLinuxType(p *corev1.Pod) {
	p.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"}
}

func seccompUnconfined(p *corev1.Pod) {
	p.Spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func authenticationv1TokenRequest() authenticationv1.TokenRequest {
	ttl := int64(600)
	return authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}
}

func dynamicFor(cfg *rest.Config) (dynamic.Interface, error) { return dynamic.NewForConfig(cfg) }
