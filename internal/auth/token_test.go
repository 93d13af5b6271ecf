package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"math/bits"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

var tokShape = regexp.MustCompile(`^smek_[a-z2-7]{52}$`)

func TestNewTokenShape(t *testing.T) {
	secret, prefix, hash := auth.NewToken()
	if !tokShape.MatchString(secret) {
		t.Fatalf("got token %d bytes long of shape %q, want smek_ and 52 base32 characters", len(secret), tokShape)
	}
	if prefix != secret[:13] || !strings.HasPrefix(prefix, auth.TokenPrefix) {
		t.Errorf("got prefix %q, want the first 13 characters of the token", prefix)
	}
	want := sha256.Sum256([]byte(secret))
	if string(hash) != string(want[:]) || string(auth.HashToken(secret)) != string(want[:]) {
		t.Errorf("the stored hash is not the SHA-256 of the token")
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret[len(auth.TokenPrefix):]))
	if err != nil || len(raw) != 32 {
		t.Errorf("the token body decodes to %d bytes (%v), want 32: 256 random bits", len(raw), err)
	}
	if !auth.IsSMEKToken(secret) || auth.IsSMEKToken("eyJhbGciOi.x.y") || auth.IsSMEKToken("SMEK_"+secret[5:]) {
		t.Error("IsSMEKToken tells tokens apart wrongly")
	}
}

// 1,000 tokens: all different, and every one of the 256 bit positions is
// set in about half of them. A stuck bit or byte is 30 standard deviations
// away from the bounds used; a fair source leaves them with probability
// below 1e-12.
func TestNewTokenEntropy(t *testing.T) {
	const n = 1000
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	seen := map[string]bool{}
	prefixes := map[string]bool{}
	var ones [256]int
	total := 0
	for range n {
		secret, prefix, _ := auth.NewToken()
		if seen[secret] {
			t.Fatalf("token repeated after %d", len(seen))
		}
		seen[secret] = true
		prefixes[prefix] = true
		raw, err := enc.DecodeString(strings.ToUpper(secret[5:]))
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range raw {
			total += bits.OnesCount8(b)
			for j := range 8 {
				ones[i*8+j] += int(b >> j & 1)
			}
		}
	}
	for i, k := range ones {
		if k < 380 || k > 620 {
			t.Errorf("bit %d is set in %d of %d tokens, want about half", i, k, n)
		}
	}
	if mean := float64(total) / n; mean < 124 || mean > 132 {
		t.Errorf("tokens have %.1f bits set on average, want about 128", mean)
	}
	// 40 bits of prefix: 1,000 tokens share one with probability 5e-7.
	if len(prefixes) != n {
		t.Errorf("got %d distinct prefixes for %d tokens; 'token revoke PREFIX' would be ambiguous", len(prefixes), n)
	}
}

// countingStore counts lookups, to show which credentials never reach the
// database.
type countingStore struct {
	auth.TokenStore
	n atomic.Int64
}

func (s *countingStore) PrincipalByTokenHash(ctx context.Context, hash []byte) (cluster.Principal, error) {
	s.n.Add(1)
	return s.TokenStore.PrincipalByTokenHash(ctx, hash)
}

type tokOIDC struct{ n atomic.Int64 }

func (o *tokOIDC) Authenticate(ctx context.Context, raw string) (cluster.Principal, error) {
	o.n.Add(1)
	return cluster.Principal{Actor: "oidc:test"}, nil
}

// tokSetup stores two tokens of account "ci" in a real database and
// revokes one of them.
func tokSetup(t testing.TB) (db *sqlite.DB, valid, revoked string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	max := 3
	a, err := db.EnsureAccount(ctx, "ci", sqlite.AccountLimits{MaxClusters: &max})
	if err != nil {
		t.Fatal(err)
	}
	for _, priv := range []bool{true, false} {
		secret, prefix, hash := auth.NewToken()
		if _, err := db.CreateToken(ctx, sqlite.NewToken{AccountID: a.ID, Prefix: prefix, Hash: hash, AllowPrivileged: priv}); err != nil {
			t.Fatal(err)
		}
		if priv {
			valid = secret
		} else {
			revoked = secret
			if err := db.RevokeToken(ctx, prefix); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db, valid, revoked
}

func TestAuthenticate(t *testing.T) {
	db, valid, revoked := tokSetup(t)
	for _, header := range []string{"Bearer " + valid, "bearer " + valid, "BEARER " + valid, "  Bearer   " + valid + " \t"} {
		a := &auth.Authenticator{Tokens: db}
		p, err := a.Authenticate(context.Background(), header)
		if err != nil {
			t.Errorf("%q: %v", header[:10], err)
			continue
		}
		if p.Account.Name != "ci" || p.Account.MaxClusters != 3 || !p.AllowPrivileged || p.Actor != "token:"+valid[:13] {
			t.Errorf("got %+v", p)
		}
		if strings.Contains(p.Actor, valid[13:]) {
			t.Errorf("the actor %q names the secret", p.Actor)
		}
	}

	tests := []struct {
		name   string
		header string
		says   string
		lookup bool // whether the database is asked
	}{
		{"missing header", "", "missing Authorization header", false},
		{"basic auth", "Basic dXNlcjpwYXNz", "must be 'Bearer <token>'", false},
		{"token without scheme", valid, "must be 'Bearer <token>'", false},
		{"scheme without token", "Bearer", "must be 'Bearer <token>'", false},
		{"scheme with blanks", "Bearer    ", "must be 'Bearer <token>'", false},
		{"other scheme", "Token " + valid, "must be 'Bearer <token>'", false},
		{"unknown token", "Bearer smek_" + strings.Repeat("a", 52), "not valid", true},
		{"token with one character changed", "Bearer " + valid[:len(valid)-1] + flip(valid[len(valid)-1]), "not valid", true},
		{"revoked token", "Bearer " + revoked, "not valid", true},
		{"not a SMEK token", "Bearer hunter2", "not valid", false},
		{"JWT without OIDC configured", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "not valid", false},
		{"oversized token", "Bearer smek_" + strings.Repeat("a", 16<<10), "too large", false},
		{"oversized JWT", "Bearer " + strings.Repeat("a", 9<<10) + "." + strings.Repeat("b", 9<<10) + ".c", "too large", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &countingStore{TokenStore: db}
			a := &auth.Authenticator{Tokens: store}
			p, err := a.Authenticate(context.Background(), tt.header)
			e, ok := errors.AsType[*cluster.Error](err)
			if !ok || e.Code != cluster.EUNAUTHORIZED {
				t.Fatalf("got %+v, %v; want unauthorized", p, err)
			}
			if !strings.Contains(e.Message, tt.says) {
				t.Errorf("got message %q, want it to contain %q", e.Message, tt.says)
			}
			if len(tt.header) > 20 && strings.Contains(e.Message, tt.header[7:20]) {
				t.Errorf("the message %q repeats the credential", e.Message)
			}
			if got := store.n.Load() > 0; got != tt.lookup {
				t.Errorf("database asked: %t, want %t", got, tt.lookup)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// With OIDC configured, JWTs go to the verifier and SMEK tokens to the
// database, never the other way round.
func TestAuthenticateRoutesJWTsToOIDC(t *testing.T) {
	db, valid, _ := tokSetup(t)
	store := &countingStore{TokenStore: db}
	oidc := &tokOIDC{}
	a := &auth.Authenticator{Tokens: store, OIDC: oidc}
	ctx := context.Background()

	if p, err := a.Authenticate(ctx, "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"); err != nil || p.Actor != "oidc:test" {
		t.Errorf("JWT: got %+v, %v", p, err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+valid); err != nil {
		t.Errorf("SMEK token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "Bearer not.a-jwt"); cluster.ErrorCode(err) != cluster.EUNAUTHORIZED {
		t.Errorf("two-part credential: got %v, want unauthorized", err)
	}
	if oidc.n.Load() != 1 || store.n.Load() != 1 {
		t.Errorf("OIDC asked %d times, database %d times; want 1 and 1", oidc.n.Load(), store.n.Load())
	}
}

// A revoked token is answered exactly as one that never existed: the
// answer must not tell a guesser that a token was real once.
func TestAuthenticateRevokedAsUnknown(t *testing.T) {
	db, _, revoked := tokSetup(t)
	store := &countingStore{TokenStore: db}
	a := &auth.Authenticator{Tokens: store}
	ctx := context.Background()
	unknown, _, _ := auth.NewToken()
	_, errRevoked := a.Authenticate(ctx, "Bearer "+revoked)
	_, errUnknown := a.Authenticate(ctx, "Bearer "+unknown)
	r, ok1 := errors.AsType[*cluster.Error](errRevoked)
	u, ok2 := errors.AsType[*cluster.Error](errUnknown)
	if !ok1 || !ok2 {
		t.Fatalf("got %v and %v, want application errors", errRevoked, errUnknown)
	}
	if r.Code != u.Code || r.Field != u.Field || r.Message != u.Message || cluster.ErrorMessage(errRevoked) != cluster.ErrorMessage(errUnknown) {
		t.Errorf("revoked: %s %q %q; unknown: %s %q %q; want them alike", r.Code, r.Field, r.Message, u.Code, u.Field, u.Message)
	}
	// Both are one lookup by hash.
	if n := store.n.Load(); n != 2 {
		t.Errorf("database asked %d times, want 2", n)
	}
}

// BenchmarkAuthenticateTokens compares the cost of refusing an unknown and
// a revoked token: both are one lookup of the hash in the unique index, so
// their times should be alike (a revoked token only scans its row).
func BenchmarkAuthenticateTokens(b *testing.B) {
	db, valid, revoked := tokSetup(b)
	unknown, _, _ := auth.NewToken()
	a := &auth.Authenticator{Tokens: db}
	for _, bc := range []struct{ name, token string }{{"unknown", unknown}, {"revoked", revoked}, {"valid", valid}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				a.Authenticate(context.Background(), "Bearer "+bc.token)
			}
		})
	}
}
