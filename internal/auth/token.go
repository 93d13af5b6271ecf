// Package auth turns a request's bearer credential into a Principal: SMEK
// tokens (random, stored hashed) and, where configured, OIDC tokens from CI
// systems mapped to accounts by policy.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// TokenPrefix starts every SMEK token, which tells it apart from a JWT.
const TokenPrefix = "smek_"

// tokenBytes is the entropy of a token: 256 bits.
const tokenBytes = 32

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken returns a fresh token secret, the public prefix that names it in
// listings, and the hash to store.
func NewToken() (secret, prefix string, hash []byte) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	secret = TokenPrefix + strings.ToLower(enc.EncodeToString(b[:]))
	return secret, secret[:len(TokenPrefix)+8], HashToken(secret)
}

// HashToken returns the stored form of a token. Tokens carry 256 random
// bits, so a fast hash is enough: there is nothing to brute-force.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// IsSMEKToken reports whether a bearer credential has the shape of a SMEK
// token (as opposed to a JWT).
func IsSMEKToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }

// TokenStore finds the principal behind a token hash.
type TokenStore interface {
	PrincipalByTokenHash(ctx context.Context, hash []byte) (cluster.Principal, error)
}

// OIDCVerifier authenticates a JWT from a CI system. It is nil when OIDC is
// not configured.
type OIDCVerifier interface {
	Authenticate(ctx context.Context, rawJWT string) (cluster.Principal, error)
}

// Authenticator checks bearer credentials.
type Authenticator struct {
	Tokens TokenStore
	// OIDC verifies JWTs; nil turns OIDC off.
	OIDC OIDCVerifier
}

// maxCredential bounds the size of a bearer credential we look at.
const maxCredential = 16 << 10

// Authenticate returns the principal for the Authorization header value.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (cluster.Principal, error) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if header == "" {
		return cluster.Principal{}, cluster.Errorf(cluster.EUNAUTHORIZED, "", "missing Authorization header: send 'Authorization: Bearer <token>'")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return cluster.Principal{}, cluster.Errorf(cluster.EUNAUTHORIZED, "", "the Authorization header must be 'Bearer <token>'")
	}
	cred = strings.TrimSpace(cred)
	if len(cred) > maxCredential {
		return cluster.Principal{}, cluster.Errorf(cluster.EUNAUTHORIZED, "", "the bearer token is too large")
	}
	if IsSMEKToken(cred) {
		p, err := a.Tokens.PrincipalByTokenHash(ctx, HashToken(cred))
		if cluster.ErrorCode(err) == cluster.EUNAUTHORIZED {
			// The store tells a revoked token from an unknown one; the
			// caller must not learn which (a revoked token existed), so
			// both get one answer and the store's reason goes to the log.
			return p, &cluster.Error{Code: cluster.EUNAUTHORIZED, Message: msgInvalidToken, Err: err}
		}
		return p, err
	}
	if a.OIDC != nil && strings.Count(cred, ".") == 2 {
		return a.OIDC.Authenticate(ctx, cred)
	}
	return cluster.Principal{}, cluster.Errorf(cluster.EUNAUTHORIZED, "", msgInvalidToken)
}

// msgInvalidToken answers every SMEK token that does not authenticate,
// whether it never existed or was revoked.
const msgInvalidToken = "the bearer token is not valid"
