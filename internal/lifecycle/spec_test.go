package lifecycle

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

// specBackend is the least a pool needs to be built: validation never
// reaches the backend, so every method that would do work fails loudly.
type specBackend struct{}

var _ pool.Backend = specBackend{}

var errNotForSpec = errors.New("the spec tests do not run clusters")

func (specBackend) Name() string { return "spec-test" }
func (specBackend) Versions(context.Context) ([]string, error) {
	return specVersions, nil
}
func (specBackend) Provision(context.Context, cluster.Member) ([]byte, error) {
	return nil, errNotForSpec
}
func (specBackend) Claim(context.Context, cluster.Member, cluster.Cluster) (cluster.Kubeconfig, error) {
	return cluster.Kubeconfig{}, errNotForSpec
}
func (specBackend) Credential(context.Context, cluster.Member, cluster.Cluster) (cluster.Kubeconfig, error) {
	return cluster.Kubeconfig{}, errNotForSpec
}
func (specBackend) Stop(context.Context, cluster.Member) error            { return errNotForSpec }
func (specBackend) Start(context.Context, cluster.Member) ([]byte, error) { return nil, errNotForSpec }
func (specBackend) Destroy(context.Context, cluster.Member) error         { return errNotForSpec }
func (specBackend) Release(context.Context, cluster.Member) (bool, []byte, error) {
	return false, nil, errNotForSpec
}

// specVersions are offered newest first, with two patch releases of 1.36.
var specVersions = []string{"1.36.3", "1.36.1", "1.35.7"}

func newSpecService(t *testing.T, cfg Config) *Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, pool.New(db, specBackend{}, pool.Config{}), specVersions, cfg)
}

func principal(maxMinutes int, privileged bool) cluster.Principal {
	return cluster.Principal{
		Account:         cluster.Account{ID: 1, Name: "me", MaxClusters: 5, MaxMinutesToLive: maxMinutes},
		AllowPrivileged: privileged, Actor: "token:smek_test",
	}
}

func ptr[T any](v T) *T { return &v }

// wantCode fails unless err is a *cluster.Error with this code and field.
func wantCode(t *testing.T, err error, code cluster.Code, field string) *cluster.Error {
	t.Helper()
	e, ok := errors.AsType[*cluster.Error](err)
	if !ok {
		t.Fatalf("got %v (%T), want a *cluster.Error %s on %q", err, err, code, field)
	}
	if e.Code != code || e.Field != field {
		t.Fatalf("got %s on %q (%s), want %s on %q", e.Code, e.Field, e.Message, code, field)
	}
	return e
}

func TestSpecDefaults(t *testing.T) {
	s := newSpecService(t, Config{})
	got, err := s.spec(principal(cluster.DefaultMaxMinutesToLive, false), cluster.CreateInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Spec{K8sVersion: "1.36.3", MinutesToLive: 60, KeepCluster: true, Size: cluster.SizeMid}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// An account whose maximum is below the seed's default of 60 minutes gets
// its maximum, rather than a create that fails without any field set.
func TestSpecDefaultMinutesClampedToAccount(t *testing.T) {
	s := newSpecService(t, Config{})
	got, err := s.spec(principal(30, false), cluster.CreateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.MinutesToLive != 30 {
		t.Errorf("got minutes-to-live %d, want the account's maximum 30", got.MinutesToLive)
	}
}

func TestSpecConfiguredDefaultVersion(t *testing.T) {
	s := newSpecService(t, Config{DefaultK8sVersion: "1.35.7"})
	got, err := s.spec(principal(60, false), cluster.CreateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.K8sVersion != "1.35.7" || s.DefaultK8sVersion() != "1.35.7" {
		t.Errorf("got %q, want the configured default 1.35.7", got.K8sVersion)
	}
}

func TestSpecVersions(t *testing.T) {
	s := newSpecService(t, Config{})
	valid := map[string]string{
		"1.36.3":     "1.36.3",
		"v1.36.3":    "1.36.3",
		" 1.36.3 ":   "1.36.3",
		"1.36.1":     "1.36.1",
		"1.36":       "1.36.3", // the newest patch release of the minor version
		"v1.36":      "1.36.3",
		"1.35":       "1.35.7",
		"1.35.7":     "1.35.7",
		"v1.35.7 \n": "1.35.7",
	}
	for in, want := range valid {
		got, err := s.spec(principal(60, false), cluster.CreateInput{K8sVersion: ptr(in)})
		if err != nil {
			t.Errorf("k8s-version %q: %v", in, err)
			continue
		}
		if got.K8sVersion != want {
			t.Errorf("k8s-version %q: got %q, want %q", in, got.K8sVersion, want)
		}
	}
	invalid := []string{
		"1.27.4", // the seed's example: not offered here
		"", "1", "v1", "1.3", "1.36.", "1.36.3.1", "1.36.30", "1.37", "V1.36.3", "latest", "1.36.x",
		strings.Repeat("1.", 500),
	}
	for _, in := range invalid {
		_, err := s.spec(principal(60, false), cluster.CreateInput{K8sVersion: ptr(in)})
		e := wantCode(t, err, cluster.EINVALID, "k8s-version")
		if strings.Join(e.Supported, ",") != strings.Join(specVersions, ",") {
			t.Errorf("k8s-version %q: got supported %q, want %q", in, e.Supported, specVersions)
		}
		if !strings.Contains(e.Message, "1.36.3, 1.36.1, 1.35.7") {
			t.Errorf("k8s-version %q: message %q does not list the supported versions", in, e.Message)
		}
		if len(e.Message) > 300 {
			t.Errorf("k8s-version of %d bytes: message of %d bytes, want the value shortened", len(in), len(e.Message))
		}
	}
}

func TestSpecMinutesToLive(t *testing.T) {
	s := newSpecService(t, Config{})
	p := principal(120, false)
	for _, m := range []int{1, 2, 60, 119, 120} {
		got, err := s.spec(p, cluster.CreateInput{MinutesToLive: ptr(m)})
		if err != nil {
			t.Errorf("minutes-to-live %d: %v", m, err)
		} else if got.MinutesToLive != m {
			t.Errorf("minutes-to-live %d: got %d", m, got.MinutesToLive)
		}
	}
	for _, m := range []int{0, -1, 121, 1440, -1 << 62, 1 << 62} {
		_, err := s.spec(p, cluster.CreateInput{MinutesToLive: ptr(m)})
		e := wantCode(t, err, cluster.EINVALID, "minutes-to-live")
		if !strings.Contains(e.Message, "120") {
			t.Errorf("minutes-to-live %d: message %q does not name the account's maximum", m, e.Message)
		}
	}
}

func TestSpecSizes(t *testing.T) {
	s := newSpecService(t, Config{})
	got, err := s.spec(principal(60, false), cluster.CreateInput{Size: ptr("1-mid")})
	if err != nil || got.Size != "1-mid" {
		t.Fatalf("cluster-size 1-mid: got %q, %v", got.Size, err)
	}
	for _, in := range []string{"", "1-MID", "2-mid", "1-large", " 1-mid", "1-mid\n"} {
		_, err := s.spec(principal(60, false), cluster.CreateInput{Size: ptr(in)})
		e := wantCode(t, err, cluster.EINVALID, "cluster-size")
		if len(e.Supported) != 1 || e.Supported[0] != "1-mid" {
			t.Errorf("cluster-size %q: got supported %q, want [1-mid]", in, e.Supported)
		}
	}
}

func TestSpecKeepCluster(t *testing.T) {
	s := newSpecService(t, Config{})
	for in, want := range map[*bool]bool{nil: true, ptr(true): true, ptr(false): false} {
		got, err := s.spec(principal(60, false), cluster.CreateInput{KeepCluster: in})
		if err != nil {
			t.Fatal(err)
		}
		if got.KeepCluster != want {
			t.Errorf("keep-cluster %v: got %t, want %t", in, got.KeepCluster, want)
		}
	}
}

func TestSpecEmails(t *testing.T) {
	s := newSpecService(t, Config{})
	valid := map[string]string{
		"dev@example.com":           "dev@example.com",
		" dev@example.com\t":        "dev@example.com",
		"first.last+ci@eliatra.com": "first.last+ci@eliatra.com",
		"a@b.co":                    "a@b.co",
	}
	for in, want := range valid {
		got, err := s.spec(principal(60, false), cluster.CreateInput{NotificationEmail: ptr(in), RequireEmail: true})
		if err != nil {
			t.Errorf("notification-email %q: %v", in, err)
		} else if got.NotificationEmail != want {
			t.Errorf("notification-email %q: got %q, want %q", in, got.NotificationEmail, want)
		}
	}
	invalid := []string{
		"[email\u00a0protected]", // the seed's address as Cloudflare mangled it (a no-break space)
		"[email protected]",
		"", "   ", "dev", "dev@", "@example.com", "dev@localhost", "dev@example.com.", "dev@.example.com",
		"Dev <dev@example.com>", "<dev@example.com>", "dev@example.com, ops@example.com",
		"dev@example.com\r\nBcc: victim@example.com", // header injection
		"dev@@example.com", "dev example@example.com",
		strings.Repeat("a", 250) + "@example.com", // longer than SMTP allows
	}
	for _, in := range invalid {
		_, err := s.spec(principal(60, false), cluster.CreateInput{NotificationEmail: ptr(in)})
		e := wantCode(t, err, cluster.EINVALID, "notification-email")
		if len(e.Message) > 300 {
			t.Errorf("notification-email of %d bytes: message of %d bytes, want the value shortened", len(in), len(e.Message))
		}
	}
}

func TestSpecEmailRequiredOnSeedAPI(t *testing.T) {
	s := newSpecService(t, Config{})
	_, err := s.spec(principal(60, false), cluster.CreateInput{RequireEmail: true})
	e := wantCode(t, err, cluster.EINVALID, "notification-email")
	if !strings.Contains(e.Message, "required") {
		t.Errorf("got %q, want it to say the field is required", e.Message)
	}
	// /v1 does not require it.
	got, err := s.spec(principal(60, false), cluster.CreateInput{})
	if err != nil || got.NotificationEmail != "" {
		t.Errorf("without RequireEmail: got %q, %v; want no address and no error", got.NotificationEmail, err)
	}
}

func TestSpecPrivileged(t *testing.T) {
	s := newSpecService(t, Config{})
	_, err := s.spec(principal(60, false), cluster.CreateInput{Privileged: ptr(true)})
	wantCode(t, err, cluster.EFORBIDDEN, "enable-privileged")

	got, err := s.spec(principal(60, true), cluster.CreateInput{Privileged: ptr(true)})
	if err != nil || !got.Privileged {
		t.Errorf("with the right: got privileged %t, %v; want true", got.Privileged, err)
	}
	// Asking for less than one may is always fine.
	for _, p := range []cluster.Principal{principal(60, false), principal(60, true)} {
		got, err := s.spec(p, cluster.CreateInput{Privileged: ptr(false)})
		if err != nil || got.Privileged {
			t.Errorf("enable-privileged false (right %t): got %t, %v", p.AllowPrivileged, got.Privileged, err)
		}
	}
	if got.Flavor() != (cluster.Flavor{K8sVersion: "1.36.3", Size: "1-mid", Privileged: true}) {
		t.Errorf("got flavor %v", got.Flavor())
	}
}

// Bad input is refused before the database is asked anything, and the first
// bad field is named.
func TestSpecSeedRequest(t *testing.T) {
	s := newSpecService(t, Config{})
	// The seed's own example, with its mangled address and its version.
	in := cluster.CreateInput{
		K8sVersion: ptr("1.27.4"), MinutesToLive: ptr(120), KeepCluster: ptr(false),
		NotificationEmail: ptr("[email\u00a0protected]"), Privileged: ptr(true), Size: ptr("1-mid"), RequireEmail: true,
	}
	_, err := s.spec(principal(1440, true), in)
	wantCode(t, err, cluster.EINVALID, "k8s-version")

	in.K8sVersion = ptr("1.36")
	_, err = s.spec(principal(1440, true), in)
	wantCode(t, err, cluster.EINVALID, "notification-email")

	in.NotificationEmail = ptr("dev@eliatra.com")
	got, err := s.spec(principal(1440, true), in)
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Spec{K8sVersion: "1.36.3", MinutesToLive: 120, KeepCluster: false, NotificationEmail: "dev@eliatra.com", Privileged: true, Size: "1-mid"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestWaitBounds(t *testing.T) {
	s := newSpecService(t, Config{})
	if got, err := s.waitFor(cluster.CreateInput{}); err != nil || got != 5*time.Minute {
		t.Errorf("no wait: got %v, %v; want the default 5m", got, err)
	}
	for _, w := range []time.Duration{0, time.Second, 90 * time.Second, 30 * time.Minute} {
		if got, err := s.waitFor(cluster.CreateInput{Wait: ptr(w)}); err != nil || got != w {
			t.Errorf("wait %v: got %v, %v", w, got, err)
		}
	}
	for _, w := range []time.Duration{-time.Nanosecond, -time.Minute, 30*time.Minute + time.Nanosecond, 24 * time.Hour} {
		_, err := s.waitFor(cluster.CreateInput{Wait: ptr(w)})
		e := wantCode(t, err, cluster.EINVALID, "wait")
		if !strings.Contains(e.Message, "30m0s") {
			t.Errorf("wait %v: message %q does not name the maximum", w, e.Message)
		}
	}

	custom := newSpecService(t, Config{DefaultWait: 10 * time.Second, MaxWait: time.Minute})
	if got, _ := custom.waitFor(cluster.CreateInput{}); got != 10*time.Second {
		t.Errorf("configured default: got %v, want 10s", got)
	}
	_, err := custom.waitFor(cluster.CreateInput{Wait: ptr(61 * time.Second)})
	wantCode(t, err, cluster.EINVALID, "wait")
}

// A create with a bad spec is refused before anything is claimed or
// recorded: nothing is left behind.
func TestCreateWithBadSpecLeavesNothing(t *testing.T) {
	s := newSpecService(t, Config{})
	ctx := context.Background()
	a, err := s.db.(*sqlite.DB).EnsureAccount(ctx, "me", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	p := cluster.Principal{Account: a}
	for _, in := range []cluster.CreateInput{
		{K8sVersion: ptr("1.27.4")},
		{MinutesToLive: ptr(0)},
		{Privileged: ptr(true)},
		{Wait: ptr(-time.Second)},
	} {
		if _, err := s.Create(ctx, p, in); cluster.ErrorCode(err) != cluster.EINVALID && cluster.ErrorCode(err) != cluster.EFORBIDDEN {
			t.Errorf("create %+v: got %v, want invalid or forbidden", in, err)
		}
	}
	cs, err := s.db.Clusters(ctx, cluster.Filter{})
	if err != nil || len(cs) != 0 {
		t.Errorf("got %d clusters (%v), want none", len(cs), err)
	}
}
