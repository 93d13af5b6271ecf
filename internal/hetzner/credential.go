package hetzner

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A node is not trusted after its bootstrap: a tenant of the privileged
// flavor is root on it and can rewrite k3s.yaml. A kubeconfig may make
// client-go run a command on the provisioner (exec), fetch tokens
// (auth-provider), read the provisioner's files (tokenFile, certificate
// paths), send traffic elsewhere (proxy-url) or skip the server check
// (insecure-skip-tls-verify). So SMEK reads k3s.yaml once, on a freshly
// (re)built server before any tenant had it, accepts only what k3s itself
// writes there (inline CA, client certificate and key), seals that, and
// builds every later admin client from the sealed credential with the CA
// recorded at bootstrap — never from the node again.

// adminCredential is the cluster's admin credential as SMEK keeps it.
type adminCredential struct {
	CA, Cert, Key []byte
}

// parseAdminKubeconfig checks a kubeconfig against what k3s writes to
// k3s.yaml (one cluster, one user, inline certificate data) and returns
// its credential. Anything else is refused, naming the field.
func parseAdminKubeconfig(raw []byte) (adminCredential, error) {
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return adminCredential{}, fmt.Errorf("parse k3s kubeconfig: %w", err)
	}
	if len(kc.Clusters) != 1 || len(kc.AuthInfos) != 1 {
		return adminCredential{}, fmt.Errorf("k3s kubeconfig: has %d clusters and %d users, want one of each (clusters, users)", len(kc.Clusters), len(kc.AuthInfos))
	}
	var cred adminCredential
	for name, c := range kc.Clusters {
		bad := func(field string) error {
			return fmt.Errorf("k3s kubeconfig: cluster %q sets %s; SMEK accepts only certificate-authority-data and server", name, field)
		}
		switch {
		case c.CertificateAuthority != "":
			return cred, bad("certificate-authority (a file path)")
		case c.InsecureSkipTLSVerify:
			return cred, bad("insecure-skip-tls-verify")
		case c.ProxyURL != "":
			return cred, bad("proxy-url")
		case c.TLSServerName != "":
			return cred, bad("tls-server-name")
		case len(c.CertificateAuthorityData) == 0:
			return cred, fmt.Errorf("k3s kubeconfig: cluster %q has no certificate-authority-data", name)
		}
		if err := checkCertificates(c.CertificateAuthorityData); err != nil {
			return cred, fmt.Errorf("k3s kubeconfig: cluster %q certificate-authority-data: %w", name, err)
		}
		if u, err := url.Parse(c.Server); err != nil || u.Scheme != "https" {
			return cred, fmt.Errorf("k3s kubeconfig: cluster %q server %q is not an https URL", name, c.Server)
		}
		cred.CA = c.CertificateAuthorityData
	}
	for name, u := range kc.AuthInfos {
		bad := func(field string) error {
			return fmt.Errorf("k3s kubeconfig: user %q sets %s; SMEK accepts only client-certificate-data and client-key-data", name, field)
		}
		switch {
		case u.Exec != nil:
			return cred, bad("exec (a command to run)")
		case u.AuthProvider != nil:
			return cred, bad("auth-provider")
		case u.Token != "":
			return cred, bad("token")
		case u.TokenFile != "":
			return cred, bad("tokenFile")
		case u.ClientCertificate != "":
			return cred, bad("client-certificate (a file path)")
		case u.ClientKey != "":
			return cred, bad("client-key (a file path)")
		case u.Username != "" || u.Password != "":
			return cred, bad("username/password")
		case u.Impersonate != "" || u.ImpersonateUID != "" || len(u.ImpersonateGroups) > 0 || len(u.ImpersonateUserExtra) > 0:
			return cred, bad("as (impersonation)")
		case len(u.ClientCertificateData) == 0:
			return cred, fmt.Errorf("k3s kubeconfig: user %q has no client-certificate-data", name)
		case len(u.ClientKeyData) == 0:
			return cred, fmt.Errorf("k3s kubeconfig: user %q has no client-key-data", name)
		}
		if err := checkCertificates(u.ClientCertificateData); err != nil {
			return cred, fmt.Errorf("k3s kubeconfig: user %q client-certificate-data: %w", name, err)
		}
		cred.Cert, cred.Key = u.ClientCertificateData, u.ClientKeyData
	}
	return cred, nil
}

// checkCertificates checks that b is one or more PEM certificates.
func checkCertificates(b []byte) error {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a PEM %s, want certificates", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 || len(bytes.TrimSpace(b)) > 0 {
		return errors.New("is not PEM-encoded certificates")
	}
	return nil
}

// restConfig is the admin client for the API at server: the credential's
// inline certificates and nothing else.
//
// Its rate limit is ten times client-go's default (5 requests a second,
// bursts of 10, a limiter per API group). A member's client is kept for
// the member's life (see admins), so its limiter is not fresh at each
// call: with the default, a few claims, credentials or a revocation in a
// row on one member already waited 200 ms a request. The limit still
// bounds a runaway loop; the cluster is the member's alone.
func (c adminCredential) restConfig(server string) *rest.Config {
	return &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: c.CA, CertData: c.Cert, KeyData: c.Key},
		QPS: 50, Burst: 100}
}

// kubeconfig writes the credential as SMEK seals it: the same shape as
// k3s.yaml, nothing but inline certificate data.
func (c adminCredential) kubeconfig(server string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["default"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.CA}
	kc.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.Cert, ClientKeyData: c.Key}
	kc.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	kc.CurrentContext = "default"
	return clientcmd.Write(*kc)
}
