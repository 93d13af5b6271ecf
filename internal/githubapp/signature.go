package githubapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// SignatureHeader carries the HMAC-SHA256 of the body under the webhook
// secret. The SHA-1 X-Hub-Signature is deliberately not accepted.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Hub-Signature-256 value against body in
// constant time. Any failure is EUNAUTHORIZED.
func VerifySignature(secret []byte, header string, body []byte) error {
	if header == "" {
		return cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "the request has no %s header", SignatureHeader)
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s must start with sha256=", SignatureHeader)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s is not a hex SHA-256", SignatureHeader)
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s does not match the body", SignatureHeader)
	}
	return nil
}
