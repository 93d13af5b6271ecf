package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/sethvargo/go-githubactions"
	"github.com/smek/action/internal/client"
)

// credential is what the action authenticates with.
type credential struct {
	token string
	// kind is "token" or "oidc", for messages.
	kind string
}

// errNoCredential is an action without a token and without id-token: write.
var errNoCredential = errors.New("no credential: set the token input (a SMEK token, e.g. ${{ secrets.SMEK_TOKEN }}) or give the job `permissions: id-token: write` to use its GitHub OIDC token")

// jobClient is the API client of a step of the action: the server of
// api-url with the action's credential (see actionCredential).
func (p *program) jobClient(ctx context.Context, a *githubactions.Action, in actionInputs) (*client.Client, credential, error) {
	cred, err := actionCredential(ctx, a, in.token, in.oidcAudience)
	if err != nil {
		return nil, credential{}, err
	}
	c, err := client.New(in.apiURL, cred.token, client.WithHTTPClient(p.http), client.WithUserAgent(p.userAgent()))
	if err != nil {
		return nil, credential{}, fmt.Errorf("input api-url: %w", err)
	}
	return c, cred, nil
}

// actionCredential picks the credential of the action: the token input
// when it is set (an explicit choice wins), else the job's OIDC token when
// the job may mint one (the runner then sets ACTIONS_ID_TOKEN_REQUEST_URL),
// requested for audience. The OIDC token is masked here; readInputs masks
// the token input.
func actionCredential(ctx context.Context, a *githubactions.Action, token, audience string) (credential, error) {
	if token != "" {
		return credential{token: token, kind: "token"}, nil
	}
	if a.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" {
		return credential{}, errNoCredential
	}
	jwt, err := a.GetIDToken(ctx, audience)
	if err != nil {
		return credential{}, fmt.Errorf("get the job's OIDC token for audience %q: %w", audience, err)
	}
	if jwt == "" {
		return credential{}, errors.New("get the job's OIDC token: the runner answered without a token")
	}
	a.AddMask(jwt)
	return credential{token: jwt, kind: "oidc"}, nil
}

// defaultAudience is the OIDC audience when the oidc-audience input is
// empty: the SMEK server's origin, so that a token minted for one
// installation is not accepted by another.
func defaultAudience(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return apiURL
	}
	return u.Scheme + "://" + u.Host
}
