package hetzner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// testPEM returns a self-signed CA certificate and its key, PEM-encoded.
func testPEM(t *testing.T) (cert, key []byte) {
	return selfSigned(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k3s-server-ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true})
}

// selfSigned signs tmpl with a fresh P-256 key and returns the certificate
// and the key, PEM-encoded.
func selfSigned(t *testing.T, tmpl *x509.Certificate) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// k3sKubeconfig is k3s.yaml as k3s writes it (shared/fixtures/k3s/
// k3s.yaml.example): cluster, user and context "default", inline data.
func k3sKubeconfig(t *testing.T) *clientcmdapi.Config {
	ca, _ := testPEM(t)
	cert, key := testPEM(t)
	c := clientcmdapi.NewConfig()
	c.Clusters["default"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthorityData: ca}
	c.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	c.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	c.CurrentContext = "default"
	return c
}

// TestBootstrapAcceptsOnlyInlineCertificates: the admin kubeconfig read
// from a freshly built server is k3s's own, with inline certificate data;
// anything that makes client-go run a command, read a file, send a
// bearer token or skip the CA check is refused with the field named.
func TestBootstrapAcceptsOnlyInlineCertificates(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		edit        func(c *clientcmdapi.Config)
	}{
		{"k3s as written", "", func(*clientcmdapi.Config) {}},
		{"exec plugin", "exec", func(c *clientcmdapi.Config) {
			c.AuthInfos["default"].Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh", Args: []string{"-c", "id"}, InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		}},
		{"auth provider", "auth-provider", func(c *clientcmdapi.Config) {
			c.AuthInfos["default"].AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"idp-issuer-url": "https://evil.example"}}
		}},
		{"token", "token", func(c *clientcmdapi.Config) { c.AuthInfos["default"].Token = "abc" }},
		{"token file", "tokenFile", func(c *clientcmdapi.Config) { c.AuthInfos["default"].TokenFile = "/etc/hcloud-token" }},
		{"client certificate file", "client-certificate", func(c *clientcmdapi.Config) {
			c.AuthInfos["default"].ClientCertificate, c.AuthInfos["default"].ClientCertificateData = "/etc/passwd", nil
		}},
		{"client key file", "client-key", func(c *clientcmdapi.Config) {
			c.AuthInfos["default"].ClientKey, c.AuthInfos["default"].ClientKeyData = "/root/.ssh/id_ed25519", nil
		}},
		{"basic auth", "username", func(c *clientcmdapi.Config) {
			c.AuthInfos["default"].Username, c.AuthInfos["default"].Password = "admin", "x"
		}},
		{"impersonation", "as", func(c *clientcmdapi.Config) { c.AuthInfos["default"].Impersonate = "system:admin" }},
		{"no client certificate", "client-certificate-data", func(c *clientcmdapi.Config) { c.AuthInfos["default"].ClientCertificateData = nil }},
		{"ca file", "certificate-authority", func(c *clientcmdapi.Config) {
			c.Clusters["default"].CertificateAuthority, c.Clusters["default"].CertificateAuthorityData = "/etc/ssl/certs/ca-certificates.crt", nil
		}},
		{"no ca", "certificate-authority-data", func(c *clientcmdapi.Config) { c.Clusters["default"].CertificateAuthorityData = nil }},
		{"ca not a certificate", "certificate-authority-data", func(c *clientcmdapi.Config) { c.Clusters["default"].CertificateAuthorityData = []byte("not pem") }},
		{"insecure", "insecure-skip-tls-verify", func(c *clientcmdapi.Config) { c.Clusters["default"].InsecureSkipTLSVerify = true }},
		{"proxy", "proxy-url", func(c *clientcmdapi.Config) { c.Clusters["default"].ProxyURL = "http://evil.example:3128" }},
		{"tls server name", "tls-server-name", func(c *clientcmdapi.Config) { c.Clusters["default"].TLSServerName = "evil.example" }},
		{"second user", "users", func(c *clientcmdapi.Config) {
			c.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/true"}}
			c.Contexts["default"].AuthInfo = "other"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := k3sKubeconfig(t)
			tc.edit(kc)
			raw, err := clientcmd.Write(*kc)
			if err != nil {
				t.Fatal(err)
			}
			cfg, sealed, err := publicKubeconfig(raw, "203.0.113.7:6443")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("k3s's own kubeconfig refused: %v", err)
				}
				if cfg.Host != "https://203.0.113.7:6443" || cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.BearerToken != "" || cfg.BearerTokenFile != "" {
					t.Errorf("rest config: got host %q exec %v auth provider %v token %q file %q", cfg.Host, cfg.ExecProvider, cfg.AuthProvider, cfg.BearerToken, cfg.BearerTokenFile)
				}
				if len(cfg.TLSClientConfig.CAData) == 0 || len(cfg.TLSClientConfig.CertData) == 0 || len(cfg.TLSClientConfig.KeyData) == 0 {
					t.Errorf("rest config lacks the inline CA, certificate or key")
				}
				if len(sealed) == 0 {
					t.Errorf("no credential to seal")
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted a kubeconfig with %s", tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}
