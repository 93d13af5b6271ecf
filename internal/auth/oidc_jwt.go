package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// maxJWT bounds the size of an OIDC token. GitHub's are under 2 KiB.
const maxJWT = 8 << 10

// b64 is the strict unpadded base64url of JWS compact serialization. Strict
// rejects non-zero padding bits, so that one token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// jwtHeader is the part of the JOSE header SMEK looks at before any key
// is fetched.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// unverifiedJWT is a token split and decoded, before its signature is
// checked: nothing in it may be trusted yet.
type unverifiedJWT struct {
	header  jwtHeader
	payload []byte
}

// Reasons a token is refused before its signature is checked. Their texts
// are safe to show to the client.
var (
	errTooLarge  = errors.New("the OIDC token is too large")
	errMalformed = errors.New("the bearer token is not a well-formed JWT (three base64url parts separated by dots)")
	errBadHeader = errors.New("the OIDC token's header is not valid JSON with an alg")
)

// splitJWT checks the shape of a compact JWS and decodes its header and
// payload.
func splitJWT(raw string) (unverifiedJWT, error) {
	var t unverifiedJWT
	if len(raw) > maxJWT {
		return t, errTooLarge
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return t, errMalformed
	}
	head, err := b64.DecodeString(parts[0])
	if err != nil {
		return t, errMalformed
	}
	if t.payload, err = b64.DecodeString(parts[1]); err != nil {
		return t, errMalformed
	}
	if _, err := b64.DecodeString(parts[2]); err != nil {
		return t, errMalformed
	}
	if err := json.Unmarshal(head, &t.header); err != nil || t.header.Alg == "" {
		return t, errBadHeader
	}
	return t, nil
}
