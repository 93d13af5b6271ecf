package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// evilWebhookAddr is the loopback address the tenant's webhook server
// listens on, under the name evilWebhookHost. The test clusters' egress
// proxy admits this one address, as an operator's allow list would admit a
// known webhook host; every other loopback address stays refused, which the
// port-scan attacks rely on.
const evilWebhookAddr = "127.0.0.77"

// evilWebhook is an admission webhook server a tenant runs: it records
// every request it sees and answers according to its path.
//
//	/allow      allows, unchanged
//	/deny       denies with evilDenial
//	/wildcard   appends a rule granting everything to a ClusterRole
//	/mark       adds the annotation evilAnnotation to any object
type evilWebhook struct {
	url    string // https://evil-webhook.test:PORT
	caPEM  []byte
	server *http.Server

	mu   sync.Mutex
	seen []seenRequest // guarded by mu
}

// seenRequest is what the webhook saw of one admission request.
type seenRequest struct {
	path, user, resource, namespace, name, op string
	groups                                    []string
}

// trusted reports whether the request came from one of the cluster's own
// identities, which a tenant webhook must never see.
func (s seenRequest) trusted() bool {
	return slices.Contains(s.groups, "system:masters") || slices.Contains(s.groups, "system:nodes") ||
		strings.HasPrefix(s.user, "system:serviceaccount:kube-system:") ||
		(strings.HasPrefix(s.user, "system:") && !strings.HasPrefix(s.user, "system:serviceaccount:"))
}

const (
	evilDenial     = "evil webhook says no"
	evilAnnotation = "evil.example.com/touched"
)

func startEvilWebhook(t *testing.T) *evilWebhook {
	t.Helper()
	cert, caPEM := selfSignedCert(t, evilWebhookHost)
	l, err := net.Listen("tcp", evilWebhookAddr+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", evilWebhookAddr, err)
	}
	w := &evilWebhook{url: fmt.Sprintf("https://%s:%d", evilWebhookHost, l.Addr().(*net.TCPAddr).Port), caPEM: caPEM}
	w.server = &http.Server{Handler: w, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go w.server.ServeTLS(l, "", "")
	t.Cleanup(func() { w.server.Close() })
	return w
}

func (w *evilWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 4<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, "bad review", http.StatusBadRequest)
		return
	}
	req := review.Request
	w.mu.Lock()
	w.seen = append(w.seen, seenRequest{
		path: r.URL.Path, user: req.UserInfo.Username, groups: req.UserInfo.Groups,
		resource: req.Resource.Resource, namespace: req.Namespace, name: req.Name, op: string(req.Operation),
	})
	w.mu.Unlock()
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	switch r.URL.Path {
	case "/deny":
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusForbidden, Message: evilDenial}
	case "/wildcard":
		resp.Patch = wildcardPatch(req.Object.Raw)
	case "/mark":
		resp.Patch = markPatch(req.Object.Raw)
	}
	if resp.Patch != nil {
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
	}
	review.Response, review.Request = resp, nil
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(review)
}

// wildcardPatch appends {apiGroups: [*], resources: [*], verbs: [*]} to the
// rules of a ClusterRole.
func wildcardPatch(raw []byte) []byte {
	var obj struct {
		Rules []any `json:"rules"`
	}
	json.Unmarshal(raw, &obj)
	all := map[string]any{"apiGroups": []string{"*"}, "resources": []string{"*"}, "verbs": []string{"*"}}
	op := map[string]any{"op": "add", "path": "/rules/-", "value": all}
	if len(obj.Rules) == 0 {
		op = map[string]any{"op": "add", "path": "/rules", "value": []any{all}}
	}
	b, _ := json.Marshal([]any{op})
	return b
}

// markPatch adds evilAnnotation to any object.
func markPatch(raw []byte) []byte {
	var obj struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	json.Unmarshal(raw, &obj)
	op := map[string]any{"op": "add", "path": "/metadata/annotations/" + strings.ReplaceAll(evilAnnotation, "/", "~1"), "value": "true"}
	if obj.Metadata.Annotations == nil {
		op = map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{evilAnnotation: "true"}}
	}
	b, _ := json.Marshal([]any{op})
	return b
}

// reset forgets what the webhook has seen.
func (w *evilWebhook) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = nil
}

// requests returns what the webhook has seen on path so far.
func (w *evilWebhook) requests(path string) []seenRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seenRequest
	for _, s := range w.seen {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

// checkNeverSawTrusted fails the test for every request of the cluster's
// own identities the webhook saw.
func (w *evilWebhook) checkNeverSawTrusted(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if s.trusted() {
			t.Errorf("the tenant's webhook saw a request of the cluster's own identity %s (groups %v): %s %s %s/%s",
				s.user, s.groups, s.op, s.resource, s.namespace, s.name)
		}
	}
}

// clientConfig points a webhook at path on the server.
func (w *evilWebhook) clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	u := w.url + path
	return admissionregistrationv1.WebhookClientConfig{URL: &u, CABundle: w.caPEM}
}

// selfSignedCert returns a serving certificate for host and its PEM, which
// also serves as the CA bundle.
func selfSignedCert(t *testing.T, host string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "evil-webhook"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{host},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
