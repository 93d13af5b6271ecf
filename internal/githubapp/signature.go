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
	want, err := parseSignature(header)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return checkSignature(want, m.Sum(nil))
}

// parseSignature returns the HMAC an X-Hub-Signature-256 value claims. It
// needs no body: a request without a well-formed header is refused before
// its body is read. Any failure is EUNAUTHORIZED.
func parseSignature(header string) ([]byte, error) {
	if header == "" {
		return nil, cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "the request has no %s header", SignatureHeader)
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return nil, cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s must start with sha256=", SignatureHeader)
	}
	want, err := hex.DecodeString(hexSum)
	if err != nil || len(want) != sha256.Size {
		return nil, cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s is not a hex SHA-256", SignatureHeader)
	}
	return want, nil
}

// checkSignature compares the claimed and the computed HMAC in constant
// time.
func checkSignature(want, got []byte) error {
	if !hmac.Equal(want, got) {
		return cluster.Errorf(cluster.EUNAUTHORIZED, SignatureHeader, "%s does not match the body", SignatureHeader)
	}
	return nil
}
