package local

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is a control plane's key material, made fresh for every control plane
// so that no credential works on two clusters.
type pki struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// Files of a control plane's PKI, relative to its pki directory.
const (
	caCrt        = "ca.crt"
	caKey        = "ca.key"
	apiserverCrt = "apiserver.crt"
	apiserverKey = "apiserver.key"
	etcdCrt      = "etcd.crt"
	etcdKey      = "etcd.key"
	etcdClient   = "etcd-client" // .crt/.key: the apiserver's client cert for etcd
	adminCert    = "admin"       // .crt/.key: system:masters, for the provisioner
	kcmCert      = "kcm"         // .crt/.key: system:kube-controller-manager
	saKey        = "sa.key"
	saPub        = "sa.pub"
)

// certValidity is long enough for a kept cluster to be restarted months
// later; the CA dies with the cluster anyway.
const certValidity = 5 * 365 * 24 * time.Hour

// writePKI creates a CA and every certificate and key the control plane
// needs under dir.
func writePKI(dir string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := newCA(now)
	if err != nil {
		return err
	}
	if err := writeCert(dir, caCrt, caKey, ca.caCert, ca.caKey); err != nil {
		return err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	leaves := []struct {
		name    string
		cn      string
		org     []string
		dns     []string
		ips     []net.IP
		usages  []x509.ExtKeyUsage
		crt, ky string
	}{
		{name: "apiserver", cn: "kube-apiserver", dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, ips: loopback,
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, crt: apiserverCrt, ky: apiserverKey},
		{name: "etcd", cn: "etcd", dns: []string{"localhost"}, ips: loopback,
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, crt: etcdCrt, ky: etcdKey},
		{name: "etcd-client", cn: "kube-apiserver-etcd-client", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, crt: etcdClient + ".crt", ky: etcdClient + ".key"},
		{name: "admin", cn: "smek-admin", org: []string{"system:masters"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, crt: adminCert + ".crt", ky: adminCert + ".key"},
		{name: "kcm", cn: "system:kube-controller-manager", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, crt: kcmCert + ".crt", ky: kcmCert + ".key"},
	}
	for _, l := range leaves {
		cert, key, err := ca.issue(now, pkix.Name{CommonName: l.cn, Organization: l.org}, l.dns, l.ips, l.usages)
		if err != nil {
			return fmt.Errorf("issue %s certificate: %w", l.name, err)
		}
		if err := writeCert(dir, l.crt, l.ky, cert, key); err != nil {
			return err
		}
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, saKey), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, saPub), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func newCA(now time.Time) (*pki, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "smek-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &pki{caCert: cert, caKey: key}, nil
}

func (p *pki) issue(now time.Time, subject pkix.Name, dns []string, ips []net.IP, usages []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usages,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writeCert(dir, certName, keyName string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, keyName), key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// Files of a node's credentials, in the control plane's pki directory.
const (
	schedulerCert     = "scheduler"      // .crt/.key: system:kube-scheduler
	kubeletCert       = "kubelet"        // .crt/.key: system:node:<node>, the kubelet's client
	kubeletServing    = "kubelet-server" // .crt/.key: the kubelet's serving certificate
	kubeProxyCert     = "kube-proxy"     // .crt/.key: system:kube-proxy
	apiserverKubelets = "apiserver-kubelet-client"
)

// loadPKI reads the CA of the control plane whose pki directory is dir.
func loadPKI(dir string) (*pki, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, caCrt))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKey))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s: no PEM in the CA files", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &pki{caCert: cert, caKey: key}, nil
}

// writeNodePKI issues the credentials of the scheduler, the node's kubelet
// and kube-proxy, and kube-apiserver's client for the kubelet. The
// kubelet's serving certificate names nodeIP, so it is issued again
// whenever the node's address changes.
func writeNodePKI(dir, node string, nodeIP net.IP, now time.Time) error {
	ca, err := loadPKI(dir)
	if err != nil {
		return err
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaves := []struct {
		name    string
		subject pkix.Name
		dns     []string
		ips     []net.IP
		usages  []x509.ExtKeyUsage
	}{
		{name: schedulerCert, subject: pkix.Name{CommonName: "system:kube-scheduler"}, usages: client},
		{name: kubeletCert, subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, usages: client},
		{name: kubeProxyCert, subject: pkix.Name{CommonName: "system:kube-proxy"}, usages: client},
		{name: apiserverKubelets, subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}, usages: client},
		{name: kubeletServing, subject: pkix.Name{CommonName: node}, dns: []string{node}, ips: []net.IP{nodeIP},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
	}
	for _, l := range leaves {
		if issued(filepath.Join(dir, l.name+".crt"), l.ips) {
			continue
		}
		cert, key, err := ca.issue(now, l.subject, l.dns, l.ips, l.usages)
		if err != nil {
			return fmt.Errorf("issue %s certificate: %w", l.name, err)
		}
		if err := writeCert(dir, l.name+".crt", l.name+".key", cert, key); err != nil {
			return err
		}
	}
	return nil
}

// issued reports whether the certificate at path exists and names exactly
// the addresses ips.
func issued(path string, ips []net.IP) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || len(c.IPAddresses) != len(ips) {
		return false
	}
	for i, ip := range ips {
		if !c.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}
