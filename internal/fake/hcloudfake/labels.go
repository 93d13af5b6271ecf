package hcloudfake

import (
	"fmt"
	"strings"
)

// selector is a parsed label selector in the documented query language:
// k==v, k=v, k!=v, k, !k, k in (a,b), k notin (a,b), joined by commas.
type selector []requirement

type requirement struct {
	key    string
	op     string // "=", "!=", "exists", "!exists", "in", "notin"
	values []string
}

// parseSelector parses s. An empty selector matches everything.
func parseSelector(s string) (selector, error) {
	var sel selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, fmt.Errorf("empty expression in %q", s)
		}
		r, err := parseRequirement(term)
		if err != nil {
			return nil, err
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits on commas outside parentheses.
func splitTerms(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseRequirement(t string) (requirement, error) {
	if k, ok := strings.CutPrefix(t, "!"); ok {
		k = strings.TrimSpace(k)
		if err := checkKey(k); err != nil {
			return requirement{}, err
		}
		return requirement{key: k, op: "!exists"}, nil
	}
	for _, op := range []string{"==", "!=", "="} {
		if k, v, ok := strings.Cut(t, op); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if err := checkKey(k); err != nil {
				return requirement{}, err
			}
			if strings.ContainsAny(v, "=!(), ") {
				return requirement{}, fmt.Errorf("invalid value %q", v)
			}
			o := "="
			if op == "!=" {
				o = "!="
			}
			return requirement{key: k, op: o, values: []string{v}}, nil
		}
	}
	for _, op := range []string{" notin ", " in "} {
		if k, rest, ok := strings.Cut(t, op); ok {
			k, rest = strings.TrimSpace(k), strings.TrimSpace(rest)
			if err := checkKey(k); err != nil {
				return requirement{}, err
			}
			if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
				return requirement{}, fmt.Errorf("set for %q needs parentheses", k)
			}
			var vals []string
			for v := range strings.SplitSeq(rest[1:len(rest)-1], ",") {
				vals = append(vals, strings.TrimSpace(v))
			}
			return requirement{key: k, op: strings.TrimSpace(op), values: vals}, nil
		}
	}
	if err := checkKey(t); err != nil {
		return requirement{}, err
	}
	return requirement{key: t, op: "exists"}, nil
}

func checkKey(k string) error {
	if k == "" || strings.ContainsAny(k, "=!(), ") {
		return fmt.Errorf("invalid label key %q", k)
	}
	return nil
}

func (s selector) matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.key]
		switch r.op {
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "=":
			if !ok || v != r.values[0] {
				return false
			}
		case "!=":
			if ok && v == r.values[0] {
				return false
			}
		case "in":
			if !ok || !contains(r.values, v) {
				return false
			}
		case "notin":
			if ok && contains(r.values, v) {
				return false
			}
		}
	}
	return true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// validLabels checks label keys and values roughly like the API: keys
// non-empty, at most 63 characters in the name part, values at most 63.
func validLabels(labels map[string]string) *apiError {
	for k, v := range labels {
		name := k
		if i := strings.LastIndex(k, "/"); i >= 0 {
			name = k[i+1:]
		}
		if name == "" || len(name) > 63 || strings.ContainsAny(k, " =!(),") {
			return invalidField("labels", fmt.Sprintf("invalid label key %q", k))
		}
		if len(v) > 63 || strings.ContainsAny(v, " =!(),") {
			return invalidField("labels", fmt.Sprintf("invalid label value for key %q", k))
		}
	}
	return nil
}
