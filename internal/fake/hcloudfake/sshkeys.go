package hcloudfake

import (
	"crypto/md5" //nolint:gosec // the API's fingerprint is the MD5 one
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/crypto/ssh"
)

type sshKey struct {
	id          int64
	name        string
	publicKey   string
	fingerprint string
	labels      map[string]string
	created     time.Time
}

func (k *sshKey) schema() schema.SSHKey {
	return schema.SSHKey{ID: k.id, Name: k.name, Fingerprint: k.fingerprint, PublicKey: k.publicKey, Labels: cloneLabels(k.labels), Created: k.created}
}

// md5Fingerprint is the colon-separated MD5 fingerprint the API shows.
func md5Fingerprint(pub ssh.PublicKey) string {
	sum := md5.Sum(pub.Marshal()) //nolint:gosec
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

func (f *Fake) createSSHKey(r *http.Request, now time.Time) (int, any, *apiError) {
	var req schema.SSHKeyCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == "" {
		return 0, nil, invalidField("name", "is required")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.PublicKey))
	if err != nil {
		return 0, nil, invalidField("public_key", "is not a valid SSH public key")
	}
	fp := md5Fingerprint(pub)
	for _, k := range f.sshKeys {
		if k.fingerprint == fp {
			return 0, nil, uniqueField("public_key", "SSH key with the same fingerprint already exists")
		}
		if k.name == req.Name {
			return 0, nil, uniqueField("name", "SSH key with the same name already exists")
		}
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = cloneLabels(*req.Labels)
	}
	if err := validLabels(labels); err != nil {
		return 0, nil, err
	}
	k := &sshKey{id: f.id(), name: req.Name, publicKey: strings.TrimSpace(req.PublicKey), fingerprint: fp, labels: labels, created: now}
	f.sshKeys[k.id] = k
	return http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: k.schema()}, nil
}

func (f *Fake) listSSHKeys(r *http.Request, _ time.Time) (int, any, *apiError) {
	q := r.URL.Query()
	var items []*sshKey
	for _, k := range f.sshKeys {
		if n := q.Get("name"); n != "" && k.name != n {
			continue
		}
		if fp := q.Get("fingerprint"); fp != "" && k.fingerprint != fp {
			continue
		}
		items = append(items, k)
	}
	items, apiErr := filterLabels(r, items, func(k *sshKey) map[string]string { return k.labels })
	if apiErr != nil {
		return 0, nil, apiErr
	}
	slices.SortFunc(items, func(a, b *sshKey) int { return int(a.id - b.id) })
	items, meta, apiErr := page(r, items)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	out := []schema.SSHKey{}
	for _, k := range items {
		out = append(out, k.schema())
	}
	return http.StatusOK, struct {
		SSHKeys []schema.SSHKey `json:"ssh_keys"`
		Meta    schema.Meta     `json:"meta"`
	}{out, meta}, nil
}

func (f *Fake) getSSHKey(r *http.Request, _ time.Time) (int, any, *apiError) {
	id, apiErr := pathID(r, "ssh_key")
	if apiErr != nil {
		return 0, nil, apiErr
	}
	k, ok := f.sshKeys[id]
	if !ok {
		return 0, nil, notFound("ssh_key", id)
	}
	return http.StatusOK, schema.SSHKeyGetResponse{SSHKey: k.schema()}, nil
}

func (f *Fake) deleteSSHKey(r *http.Request, _ time.Time) (int, any, *apiError) {
	id, apiErr := pathID(r, "ssh_key")
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if _, ok := f.sshKeys[id]; !ok {
		return 0, nil, notFound("ssh_key", id)
	}
	delete(f.sshKeys, id)
	return http.StatusNoContent, nil, nil
}
