package policy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/egress"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/local"
)

// The attack suite runs against real control planes of the local backend:
// one per flavor, started on first use and shared by every subtest of the
// test binary, stopped by TestMain.

// testNode is the node the local backend registers; testClusterID is the
// value of its NodeLabel.
const (
	testNode      = "smek-node"
	testClusterID = "c-attack"
	// tenantNS is a namespace the tenant creates for its work.
	tenantNS = "work"
	// victimPod is a pod in kube-system, made by the admin, for the
	// exec/port-forward/eviction attacks.
	victimPod = "victim"
)

// testCluster is one running control plane with the bundle applied.
type testCluster struct {
	privileged bool
	dir        string // the control plane's data, removed by stop
	cp         *local.ControlPlane
	egress     *egress.Proxy
	admin      *rest.Config
	adminCS    kubernetes.Interface
	tenant     *rest.Config // bearer token of smek-system/tenant + CA
	cs         kubernetes.Interface
	dyn        dynamic.Interface
	stopGrant  context.CancelFunc
	grantDone  chan struct{}
}

var clusters struct {
	mu   sync.Mutex
	m    map[bool]*testCluster
	errs map[bool]error
}

func TestMain(m *testing.M) {
	code := m.Run()
	clusters.mu.Lock()
	for _, c := range clusters.m {
		c.stop()
	}
	clusters.mu.Unlock()
	os.Exit(code)
}

// kubeBin returns the folder with the Kubernetes binaries, or skips the test
// when they have not been built (make kube-bin). CI builds them first.
func kubeBin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SMEK_KUBE_BIN")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "kube")
	}
	if err := local.CheckBinaries(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return dir
}

// cluster returns the shared control plane of the flavor, starting it on
// first use. A failed start fails every test that needs it.
func cluster(t *testing.T, privileged bool) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	bin := kubeBin(t)
	clusters.mu.Lock()
	defer clusters.mu.Unlock()
	if c, ok := clusters.m[privileged]; ok {
		return c
	}
	if err, ok := clusters.errs[privileged]; ok {
		t.Fatal(err)
	}
	if clusters.m == nil {
		clusters.m, clusters.errs = map[bool]*testCluster{}, map[bool]error{}
	}
	c, err := startCluster(bin, privileged)
	if err != nil {
		clusters.errs[privileged] = err
		t.Fatal(err)
	}
	clusters.m[privileged] = c
	return c
}

// startCluster does what the local backend does before a cluster joins the
// pool (start, Apply, register the node, grant custom resources), then what
// a claim does (mint the tenant token), and sets up the fixtures the attacks
// aim at.
func startCluster(bin string, privileged bool) (*testCluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "smek-policy-")
	if err != nil {
		return nil, err
	}
	o := policy.Options{Privileged: privileged, LocalPathStorageClass: true}
	// The egress proxy as the local backend runs it, but for one exception
	// an operator might make: the tenant's webhook host of these tests.
	proxy, err := egress.New(egress.Config{
		Allow:    []netip.Prefix{netip.MustParsePrefix(evilWebhookAddr + "/32")},
		Resolver: testResolver{},
		Logger:   testLogger(),
	})
	if err != nil {
		return nil, err
	}
	cp, err := local.StartControlPlane(ctx, local.ControlPlaneConfig{
		Dir: dir, BinDir: bin, Privileged: privileged,
		AdmissionConfig: policy.AdmissionConfig(o), ExtraAPIServerFlags: policy.APIServerFlags(o),
		Egress: proxy,
	})
	if err != nil {
		proxy.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	c := &testCluster{privileged: privileged, dir: dir, cp: cp, egress: proxy, admin: cp.AdminConfig()}
	if err := c.setUp(ctx, o); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *testCluster) setUp(ctx context.Context, o policy.Options) error {
	if err := policy.Apply(ctx, c.admin, o); err != nil {
		return err
	}
	admin, err := kube.NewAdmin(c.admin)
	if err != nil {
		return err
	}
	c.adminCS = admin.Clientset()
	if err := admin.RegisterNode(ctx, testNode, map[string]string{policy.NodeLabel: testClusterID}); err != nil {
		return err
	}
	grantCtx, stop := context.WithCancel(context.Background())
	c.stopGrant, c.grantDone = stop, make(chan struct{})
	go func() {
		defer close(c.grantDone)
		policy.GrantCustomResources(grantCtx, c.admin, testLogger())
	}()
	if err := admin.WaitServiceAccount(ctx); err != nil {
		return err
	}
	// The system side of the attacks: a pod in kube-system and SMEK's
	// ownership record.
	if _, err := c.adminCS.CoreV1().ServiceAccounts("kube-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		return err
	}
	if _, err := c.adminCS.CoreV1().Pods("kube-system").Create(ctx, testPod(victimPod, "kube-system", nil), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create victim pod: %w", err)
	}
	if _, err := c.adminCS.CoreV1().ConfigMaps(policy.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "smek-cluster"}, Data: map[string]string{"cluster-id": testClusterID}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ownership record: %w", err)
	}
	// The claim: a TokenRequest for the tenant, through the admin config.
	ttl := int64(3600)
	tr, err := c.adminCS.CoreV1().ServiceAccounts(policy.Namespace).CreateToken(ctx, policy.TenantServiceAccount, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("mint tenant token: %w", err)
	}
	c.tenant = &rest.Config{
		Host:            c.cp.URL(),
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.cp.CAData()},
		QPS:             200, Burst: 400, Timeout: 30 * time.Second,
		WarningHandler: rest.NoWarnings{},
	}
	if c.cs, err = kubernetes.NewForConfig(c.tenant); err != nil {
		return err
	}
	if c.dyn, err = dynamic.NewForConfig(c.tenant); err != nil {
		return err
	}
	// The tenant's own namespace, made by the tenant.
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNS}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("tenant creates namespace %s: %w", tenantNS, err)
	}
	return waitServiceAccount(ctx, c.adminCS, tenantNS)
}

func (c *testCluster) stop() {
	if c.stopGrant != nil {
		c.stopGrant()
		<-c.grantDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.cp.Stop(ctx)
	c.egress.Close()
	os.RemoveAll(c.dir)
}

// Host names of the tests, resolved by the egress proxy as DNS would: the
// tenant's webhook server, and a name for this machine's loopback.
const (
	evilWebhookHost = "evil-webhook.test"
	loopbackHost    = "scan.test"
)

// testResolver answers for the tests' host names and refuses every other.
type testResolver struct{}

func (testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	switch host {
	case evilWebhookHost:
		return []netip.Addr{netip.MustParseAddr(evilWebhookAddr)}, nil
	case loopbackHost:
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// waitServiceAccount waits for the default ServiceAccount of ns, without
// which no pod can be created there.
func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, ns string) error {
	return poll(ctx, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// poll calls cond every 50 ms until it reports done, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("condition not met before the deadline")
		case <-tick.C:
		}
	}
}
