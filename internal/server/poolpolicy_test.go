package server

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/pool/policy"
)

func TestPoolPolicyConfig(t *testing.T) {
	def := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	priv := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	versions := []string{"1.36.3", "1.35.0"}
	fixed := map[cluster.Flavor]int{def: 2}

	p, err := PoolPolicyConfig{}.newPolicy("local", def, versions, fixed)
	if err != nil || p.Name() != "fixed" || p.Targets(time.Time{})[def].Ready != 2 {
		t.Fatalf("local default: %v, %v", p, err)
	}
	p, err = PoolPolicyConfig{}.newPolicy("hetzner", def, versions, fixed)
	if err != nil || p.Name() != "auto" {
		t.Fatalf("hetzner default: %v, %v", p, err)
	}
	if got := p.Targets(time.Time{}); len(got) != 1 || got[def].Ready != 0 {
		t.Errorf("auto with no bounds: %+v, want the default flavor at 0", got)
	}
	p, err = PoolPolicyConfig{Name: "auto", Min: map[cluster.Flavor]int{{}: 1, priv: 12}}.newPolicy("local", def, versions, fixed)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Targets(time.Time{})
	if got[def].Ready != 1 || got[priv].Ready != 12 || got[priv].Reason != "min 12" {
		t.Errorf("min 1 and 12: %+v (a max not given is at least the min)", got)
	}
	if a, ok := p.(*policy.Auto); !ok || a.ScaleDown() != true {
		t.Errorf("policy %T", p)
	}
	for _, tc := range []struct {
		name string
		c    PoolPolicyConfig
		want string
	}{
		{"min above max", PoolPolicyConfig{Name: "auto", Min: map[cluster.Flavor]int{{}: 5}, Max: map[cluster.Flavor]int{def: 4}}, "--pool-min 5 is above --pool-max 4"},
		{"version not offered", PoolPolicyConfig{Name: "auto", Max: map[cluster.Flavor]int{{K8sVersion: "1.30.0", Size: cluster.SizeMid}: 4}}, "1.30.0 is not offered"},
		{"bounds with fixed", PoolPolicyConfig{Name: "fixed", Max: map[cluster.Flavor]int{def: 4}}, "need --pool-policy auto"},
		{"unknown", PoolPolicyConfig{Name: "magic"}, "want fixed or auto"},
	} {
		if _, err := tc.c.newPolicy("local", def, versions, fixed); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if paidUntil("local") != nil {
		t.Error("the local backend is billed by the hour")
	}
	m := cluster.Member{CreatedAt: time.Date(2026, 12, 3, 8, 10, 0, 0, time.UTC)}
	if end, ok := paidUntil("hetzner")(m, m.CreatedAt.Add(75*time.Minute)); !ok || !end.Equal(m.CreatedAt.Add(2*time.Hour)) {
		t.Errorf("hetzner paid until %s, %v", end, ok)
	}
}
