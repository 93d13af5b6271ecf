package hcloudfake

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

type firewall struct {
	id      int64
	name    string
	labels  map[string]string
	created time.Time
	rules   []schema.FirewallRule
	// enforced are the rules in force: those given at create at once, a
	// set_rules' once its action succeeded.
	enforced []schema.FirewallRule
	// applyTo holds resources of type "server" or "label_selector".
	applyTo []schema.FirewallResource
}

// firewallsOf lists the firewalls that apply to s, directly or by label.
func (f *Fake) firewallsOf(s *server) []int64 {
	out := slices.Clone(s.firewalls)
	for _, fw := range f.firewalls {
		for _, res := range fw.applyTo {
			if res.Server != nil && res.Server.ID == s.id || res.LabelSelector != nil && selectorMatches(res.LabelSelector.Selector, s.labels) {
				out = append(out, fw.id)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Admits says whether the firewalls applied to server id let a TCP
// connection from src reach its public port, as Hetzner's firewalls do
// (docs: "When applying a firewall with no in rule all inbound traffic will
// be dropped. The default for in is DROP."): with no firewall applied
// (directly or through a label selector, as things stand now) everything
// comes in; otherwise only what an in rule of one of them allows, the
// rules of all applied firewalls taken together: protocol tcp, the port
// ("22", a range "1024-65535" or "any") and a source_ips CIDR holding
// src. Out rules do not matter for inbound connections. An unknown server
// admits nothing. The simulated machines ask at every connection.
func (f *Fake) Admits(id int64, port int, src netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.servers[id]
	if !ok {
		return false
	}
	fws := f.firewallsOf(s)
	if len(fws) == 0 {
		return true
	}
	src = src.Unmap()
	for _, id := range fws {
		fw := f.firewalls[id]
		if fw == nil {
			continue
		}
		for _, r := range fw.enforced {
			if r.Direction == "in" && r.Protocol == "tcp" && r.Port != nil && portMatches(*r.Port, port) && sourceMatches(r.SourceIPs, src) {
				return true
			}
		}
	}
	return false
}

func portMatches(rule string, p int) bool {
	if rule == "any" {
		return true
	}
	lo, hi, isRange := strings.Cut(rule, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return false
	}
	if !isRange {
		return p == a
	}
	b, err := strconv.Atoi(hi)
	return err == nil && a <= p && p <= b
}

func sourceMatches(cidrs []string, src netip.Addr) bool {
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(src) {
			return true
		}
	}
	return false
}

func selectorMatches(s string, labels map[string]string) bool {
	sel, err := parseSelector(s)
	return err == nil && sel.matches(labels)
}

func (f *Fake) firewallSchema(fw *firewall) schema.Firewall {
	out := schema.Firewall{ID: fw.id, Name: fw.name, Labels: cloneLabels(fw.labels), Created: fw.created, Rules: nonNil(fw.rules), AppliedTo: []schema.FirewallResource{}}
	for _, res := range fw.applyTo {
		r := res
		if r.LabelSelector != nil {
			r.AppliedToResources = []schema.FirewallResource{}
			ids := make([]int64, 0)
			for _, s := range f.servers {
				if selectorMatches(r.LabelSelector.Selector, s.labels) {
					ids = append(ids, s.id)
				}
			}
			slices.Sort(ids)
			for _, id := range ids {
				r.AppliedToResources = append(r.AppliedToResources, schema.FirewallResource{Type: "server", Server: &schema.FirewallResourceServer{ID: id}})
			}
		}
		out.AppliedTo = append(out.AppliedTo, r)
	}
	return out
}

func validRules(rules []schema.FirewallRuleRequest) ([]schema.FirewallRule, *apiError) {
	out := []schema.FirewallRule{}
	for i, r := range rules {
		field := fmt.Sprintf("rules[%d]", i)
		if r.Direction != "in" && r.Direction != "out" {
			return nil, invalidField(field+".direction", "must be in or out")
		}
		switch r.Protocol {
		case "tcp", "udp":
			if r.Port == nil || !validPort(*r.Port) {
				return nil, invalidField(field+".port", "must be a port or a range like 1024-65535")
			}
		case "icmp", "esp", "gre":
			if r.Port != nil {
				return nil, invalidField(field+".port", "is not allowed for protocol "+r.Protocol)
			}
		default:
			return nil, invalidField(field+".protocol", "must be tcp, udp, icmp, esp or gre")
		}
		ips := r.SourceIPs
		if r.Direction == "out" {
			ips = r.DestinationIPs
		}
		if len(ips) == 0 {
			return nil, invalidField(field+".source_ips", "is required")
		}
		for _, cidr := range append(slices.Clone(r.SourceIPs), r.DestinationIPs...) {
			if _, _, err := net.ParseCIDR(cidr); err != nil {
				return nil, invalidField(field+".source_ips", fmt.Sprintf("%q is not a CIDR", cidr))
			}
		}
		out = append(out, schema.FirewallRule{
			Direction: r.Direction, SourceIPs: nonNil(r.SourceIPs), DestinationIPs: nonNil(r.DestinationIPs),
			Protocol: r.Protocol, Port: r.Port, Description: r.Description,
		})
	}
	return out, nil
}

func validPort(p string) bool {
	if p == "any" {
		return true // all ports (hcloud-cli and the Terraform provider document it)
	}
	lo, hi, isRange := strings.Cut(p, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return false
	}
	if !isRange {
		return true
	}
	b, err := strconv.Atoi(hi)
	return err == nil && b >= a && b <= 65535
}

func (f *Fake) validApplyTo(res []schema.FirewallResource) *apiError {
	for i, r := range res {
		switch r.Type {
		case "server":
			if r.Server == nil {
				return invalidField(fmt.Sprintf("apply_to[%d].server", i), "is required")
			}
			if _, ok := f.servers[r.Server.ID]; !ok {
				return notFound("server", r.Server.ID)
			}
		case "label_selector":
			if r.LabelSelector == nil {
				return invalidField(fmt.Sprintf("apply_to[%d].label_selector", i), "is required")
			}
			if _, err := parseSelector(r.LabelSelector.Selector); err != nil {
				return invalidField(fmt.Sprintf("apply_to[%d].label_selector", i), err.Error())
			}
		default:
			return invalidField(fmt.Sprintf("apply_to[%d].type", i), "must be server or label_selector")
		}
	}
	return nil
}

func (f *Fake) applyActions(now time.Time, fw *firewall, res []schema.FirewallResource, command string) []schema.Action {
	out := []schema.Action{}
	for _, r := range res {
		refs := []schema.ActionResourceReference{{ID: fw.id, Type: "firewall"}}
		if r.Server != nil {
			refs = append(refs, serverRef(r.Server.ID))
		}
		out = append(out, f.startAction(now, command, nil, refs...).schema(now))
	}
	return out
}

func (f *Fake) createFirewall(r *http.Request, now time.Time) (int, any, *apiError) {
	var req schema.FirewallCreateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == "" {
		return 0, nil, invalidField("name", "is required")
	}
	for _, fw := range f.firewalls {
		if fw.name == req.Name {
			return 0, nil, uniqueField("name", "firewall name is already used")
		}
	}
	rules, apiErr := validRules(req.Rules)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if err := f.validApplyTo(req.ApplyTo); err != nil {
		return 0, nil, err
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = cloneLabels(*req.Labels)
	}
	if err := validLabels(labels); err != nil {
		return 0, nil, err
	}
	fw := &firewall{id: f.id(), name: req.Name, labels: labels, created: now, rules: rules, enforced: rules, applyTo: req.ApplyTo}
	f.firewalls[fw.id] = fw
	actions := []schema.Action{f.startAction(now, "set_firewall_rules", nil, schema.ActionResourceReference{ID: fw.id, Type: "firewall"}).schema(now)}
	actions = append(actions, f.applyActions(now, fw, req.ApplyTo, "apply_firewall")...)
	return http.StatusCreated, schema.FirewallCreateResponse{Firewall: f.firewallSchema(fw), Actions: actions}, nil
}

func (f *Fake) lookupFirewall(r *http.Request) (*firewall, *apiError) {
	id, err := pathID(r, "firewall")
	if err != nil {
		return nil, err
	}
	fw, ok := f.firewalls[id]
	if !ok {
		return nil, notFound("firewall", id)
	}
	return fw, nil
}

func (f *Fake) getFirewall(r *http.Request, _ time.Time) (int, any, *apiError) {
	fw, err := f.lookupFirewall(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, schema.FirewallGetResponse{Firewall: f.firewallSchema(fw)}, nil
}

func (f *Fake) listFirewalls(r *http.Request, _ time.Time) (int, any, *apiError) {
	var items []*firewall
	for _, fw := range f.firewalls {
		if n := r.URL.Query().Get("name"); n != "" && fw.name != n {
			continue
		}
		items = append(items, fw)
	}
	items, apiErr := filterLabels(r, items, func(fw *firewall) map[string]string { return fw.labels })
	if apiErr != nil {
		return 0, nil, apiErr
	}
	slices.SortFunc(items, func(a, b *firewall) int { return int(a.id - b.id) })
	items, meta, apiErr := page(r, items)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	out := []schema.Firewall{}
	for _, fw := range items {
		out = append(out, f.firewallSchema(fw))
	}
	return http.StatusOK, struct {
		Firewalls []schema.Firewall `json:"firewalls"`
		Meta      schema.Meta       `json:"meta"`
	}{out, meta}, nil
}

func (f *Fake) deleteFirewall(r *http.Request, _ time.Time) (int, any, *apiError) {
	fw, err := f.lookupFirewall(r)
	if err != nil {
		return 0, nil, err
	}
	delete(f.firewalls, fw.id)
	return http.StatusNoContent, nil, nil
}

// firewallAction answers set_rules, apply_to_resources and
// remove_from_resources.
func (f *Fake) firewallAction(r *http.Request, now time.Time) (int, any, *apiError) {
	fw, apiErr := f.lookupFirewall(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	switch r.PathValue("action") {
	case "set_rules":
		var req schema.FirewallActionSetRulesRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		rules, err := validRules(req.Rules)
		if err != nil {
			return 0, nil, err
		}
		fw.rules = rules
		a := f.startAction(now, "set_firewall_rules", func(ok bool) {
			if ok {
				fw.enforced = rules
			}
		}, schema.ActionResourceReference{ID: fw.id, Type: "firewall"})
		return http.StatusCreated, schema.FirewallActionSetRulesResponse{Actions: []schema.Action{a.schema(now)}}, nil
	case "apply_to_resources":
		var req schema.FirewallActionApplyToResourcesRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if err := f.validApplyTo(req.ApplyTo); err != nil {
			return 0, nil, err
		}
		for _, res := range req.ApplyTo {
			for _, have := range fw.applyTo {
				if sameResource(have, res) {
					return 0, nil, errf("firewall_already_applied", "firewall %d is already applied to this resource", fw.id)
				}
			}
		}
		fw.applyTo = append(fw.applyTo, req.ApplyTo...)
		return http.StatusCreated, schema.FirewallActionApplyToResourcesResponse{Actions: f.applyActions(now, fw, req.ApplyTo, "apply_firewall")}, nil
	case "remove_from_resources":
		var req schema.FirewallActionRemoveFromResourcesRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		for _, res := range req.RemoveFrom {
			n := len(fw.applyTo)
			fw.applyTo = slices.DeleteFunc(fw.applyTo, func(have schema.FirewallResource) bool { return sameResource(have, res) })
			if len(fw.applyTo) == n {
				return 0, nil, errf("firewall_not_applied", "firewall %d is not applied to this resource", fw.id)
			}
		}
		return http.StatusCreated, schema.FirewallActionRemoveFromResourcesResponse{Actions: f.applyActions(now, fw, req.RemoveFrom, "remove_firewall")}, nil
	default:
		return 0, nil, errf(CodeNotFound, "firewall action %q not found", r.PathValue("action"))
	}
}

func sameResource(a, b schema.FirewallResource) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Server != nil && b.Server != nil {
		return a.Server.ID == b.Server.ID
	}
	if a.LabelSelector != nil && b.LabelSelector != nil {
		return a.LabelSelector.Selector == b.LabelSelector.Selector
	}
	return false
}
