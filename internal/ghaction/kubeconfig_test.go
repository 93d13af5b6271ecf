package ghaction_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/ghaction"
)

func TestCredentials(t *testing.T) {
	tests := []struct {
		name, kubeconfig string
		want             []string
	}{
		{"token", "users:\n- name: t\n  user:\n    token: eyJhbG.ci.sig\n", []string{"eyJhbG.ci.sig"}},
		{"client cert", "users:\n- name: a\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n", []string{"Q0VSVA==", "S0VZ"}},
		{"quoted", "    password: \"p@ss word\"\n    token: 'it''s'\n", []string{"p@ss word", "it's"}},
		{"list item", "- token: abc\n", []string{"abc"}},
		{"ca data is public", "    certificate-authority-data: Q0E=\n    server: https://x\n", nil},
		{"empty value", "    token:\n", nil},
		{"no credentials", "apiVersion: v1\nkind: Config\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ghaction.Credentials(tt.kubeconfig); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCredentials(f *testing.F) {
	f.Add("users:\n- name: t\n  user:\n    token: abc\n")
	f.Add("    password: \"a\\nb\"\n")
	f.Add("token: ''\n- client-key-data: 'x'''\n")
	f.Fuzz(func(t *testing.T, kc string) {
		for _, c := range ghaction.Credentials(kc) {
			if c == "" || strings.ContainsAny(c, "\r\n") {
				t.Fatalf("credential %q is empty or spans lines; it cannot be masked", c)
			}
		}
	})
}
