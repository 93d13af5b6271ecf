package lifecycle

import (
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// defaultMinutesToLive is the seed API's default.
const defaultMinutesToLive = 60

// maxEmail is the longest address SMTP allows.
const maxEmail = 254

// spec validates in against the principal's rights and fills the defaults.
func (s *Service) spec(p cluster.Principal, in cluster.CreateInput) (cluster.Spec, error) {
	sp := cluster.Spec{K8sVersion: s.cfg.DefaultK8sVersion, MinutesToLive: defaultMinutesToLive, KeepCluster: true, Size: cluster.SizeMid}
	if p.Account.MaxMinutesToLive < sp.MinutesToLive {
		sp.MinutesToLive = p.Account.MaxMinutesToLive
	}
	if in.K8sVersion != nil {
		v, err := s.resolveVersion(*in.K8sVersion)
		if err != nil {
			return sp, err
		}
		sp.K8sVersion = v
	}
	if in.MinutesToLive != nil {
		m := *in.MinutesToLive
		if m < 1 || m > p.Account.MaxMinutesToLive {
			return sp, cluster.Errorf(cluster.EINVALID, "minutes-to-live", "minutes-to-live must be between 1 and %d (the account's maximum), got %d", p.Account.MaxMinutesToLive, m)
		}
		sp.MinutesToLive = m
	}
	if in.KeepCluster != nil {
		sp.KeepCluster = *in.KeepCluster
	}
	if in.Size != nil {
		if !slices.Contains(cluster.Sizes, *in.Size) {
			e := cluster.Errorf(cluster.EINVALID, "cluster-size", "cluster-size %q is not offered; supported: %s", short(*in.Size), strings.Join(cluster.Sizes, ", "))
			e.Supported = cluster.Sizes
			return sp, e
		}
		sp.Size = *in.Size
	}
	if in.NotificationEmail != nil {
		addr, err := parseEmail(*in.NotificationEmail)
		if err != nil {
			return sp, err
		}
		sp.NotificationEmail = addr
	}
	if in.RequireEmail && sp.NotificationEmail == "" {
		return sp, cluster.Errorf(cluster.EINVALID, "notification-email", "notification-email is required")
	}
	if in.Privileged != nil && *in.Privileged {
		if !p.AllowPrivileged {
			return sp, cluster.Errorf(cluster.EFORBIDDEN, "enable-privileged", "this token may not create privileged clusters (enable-privileged)")
		}
		sp.Privileged = true
	}
	return sp, nil
}

func parseEmail(s string) (string, error) {
	bad := func() error {
		return cluster.Errorf(cluster.EINVALID, "notification-email", "notification-email %q is not an email address like name@example.com", short(s))
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEmail {
		return "", bad()
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad()
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", bad()
	}
	return a.Address, nil
}

// resolveVersion accepts "1.36.3", "v1.36.3" and "1.36" (the newest patch
// release of that minor version).
func (s *Service) resolveVersion(v string) (string, error) {
	want := strings.TrimPrefix(strings.TrimSpace(v), "v")
	for _, have := range s.versions {
		if have == want {
			return have, nil
		}
	}
	for _, have := range s.versions { // newest first
		if strings.Count(want, ".") == 1 && strings.HasPrefix(have, want+".") {
			return have, nil
		}
	}
	e := cluster.Errorf(cluster.EINVALID, "k8s-version", "k8s-version %q is not offered; supported: %s", short(v), strings.Join(s.versions, ", "))
	e.Supported = s.versions
	return "", e
}

func short(s string) string { return cluster.Truncate(s, 64) }

// waitFor returns the wait budget of a request.
func (s *Service) waitFor(in cluster.CreateInput) (time.Duration, error) {
	if in.Wait == nil {
		return s.cfg.DefaultWait, nil
	}
	w := *in.Wait
	if w < 0 || w > s.cfg.MaxWait {
		return 0, cluster.Errorf(cluster.EINVALID, "wait", "wait must be between 0s and %s, got %s", s.cfg.MaxWait, w)
	}
	return w, nil
}
