// Package githubfake is a stateful fake of the parts of GitHub's REST API
// that SMEK's GitHub App uses, served by httptest for tests that drive the
// real go-github and ghinstallation clients.
//
// It checks what GitHub checks: the App's JWT (RS256, signed by the App's
// key, issued by the App id, at most ten minutes long) on
// POST /app/installations/{id}/access_tokens, and an unexpired installation
// token, valid for the repository and holding the permission the route
// needs, on every repository call. It records comments and reactions,
// answers collaborator-permission lookups from a model of repositories,
// organizations, their members and roles (see permission.go), and can fail
// chosen routes on demand. Routes are served at the root and under /api/v3
// (GitHub Enterprise Server's prefix).
package githubfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Route names, for Fail.
const (
	RouteAccessToken = "access_token"
	RoutePermission  = "permission"
	RouteComment     = "comment"
	RouteReaction    = "reaction"
)

// BotLogin is the login the fake gives the App's comments.
const BotLogin = "smek-app[bot]"

// Comment is a comment the App wrote.
type Comment struct {
	ID           int64
	Installation int64
	Repo         string // owner/name
	Number       int
	Body         string
}

// Reaction is a reaction the App left on a comment.
type Reaction struct {
	Installation int64
	Repo         string
	CommentID    int64
	Content      string
}

// Server is the fake. Configure it with the methods; it is safe for
// concurrent use.
type Server struct {
	*httptest.Server

	appID int64
	key   *rsa.PublicKey

	mu sync.Mutex // guards the fields below
	// tokenTTL is the life of installation tokens (GitHub: one hour).
	tokenTTL      time.Duration
	now           func() time.Time
	installations map[int64][]string // id → repositories it may reach
	// grants are the installations' permissions ("metadata" → "read").
	grants       map[int64]map[string]string
	tokens       map[string]token
	tokensIssued map[int64]int
	repos        map[string]*repository   // lower-case "owner/name" → its access
	orgs         map[string]*organization // lower-case login → organization
	comments     []Comment
	reactions    []Reaction
	failures     map[string][]int // route → statuses to answer, in order
	seq          int64
	requests     map[string]int // route → count
}

type token struct {
	installation int64
	expires      time.Time
}

// New starts a fake GitHub for App appID whose JWTs verify with key. Close
// it when done.
func New(appID int64, key *rsa.PublicKey) *Server {
	s := &Server{
		appID:         appID,
		key:           key,
		tokenTTL:      time.Hour,
		now:           time.Now,
		installations: map[int64][]string{},
		grants:        map[int64]map[string]string{},
		tokens:        map[string]token{},
		tokensIssued:  map[int64]int{},
		repos:         map[string]*repository{},
		orgs:          map[string]*organization{},
		failures:      map[string][]int{},
		seq:           1000,
		requests:      map[string]int{},
	}
	mux := http.NewServeMux()
	for _, prefix := range []string{"", "/api/v3"} {
		mux.HandleFunc("POST "+prefix+"/app/installations/{id}/access_tokens", s.accessToken)
		mux.HandleFunc("GET "+prefix+"/repos/{owner}/{repo}/collaborators/{user}/permission", s.permission)
		mux.HandleFunc("POST "+prefix+"/repos/{owner}/{repo}/issues/{number}/comments", s.comment)
		mux.HandleFunc("POST "+prefix+"/repos/{owner}/{repo}/issues/comments/{id}/reactions", s.reaction)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "Not Found")
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// DefaultGrants are the permissions an installation has unless
// SetGrants says otherwise: those of SMEK's app/manifest.json.
var DefaultGrants = map[string]string{
	"actions": "read", "issues": "read", "members": "read", "metadata": "read", "pull_requests": "write",
}

// AddInstallation installs the App on repositories ("owner/name"), with
// DefaultGrants.
func (s *Server) AddInstallation(id int64, repos ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[id] = append(s.installations[id], repos...)
	if _, ok := s.grants[id]; !ok {
		s.grants[id] = maps.Clone(DefaultGrants)
	}
}

// SetGrants replaces the permissions of an installation ("metadata" →
// "read", "pull_requests" → "write"); its tokens carry them from then on.
func (s *Server) SetGrants(id int64, grants map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[id] = maps.Clone(grants)
}

// SetTokenTTL sets the life of the installation tokens issued from now on.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// Fail makes the next requests to route answer the given statuses, one
// each, before the route works again.
func (s *Server) Fail(route string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[route] = append(s.failures[route], statuses...)
}

// Comments returns the comments written so far.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments)
}

// Reactions returns the reactions left so far, in order.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reactions)
}

// TokensIssued returns how many installation tokens were issued for an
// installation.
func (s *Server) TokensIssued(installation int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued[installation]
}

// Requests returns how many requests reached route, failed ones included.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// injected answers an injected failure of route; s.mu must be held.
func (s *Server) injected(w http.ResponseWriter, route string) bool {
	s.requests[route]++
	q := s.failures[route]
	if len(q) == 0 {
		return false
	}
	status := q[0]
	s.failures[route] = q[1:]
	fail(w, status, "injected failure")
	return true
}

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w, RouteAccessToken) {
		return
	}
	if err := s.checkJWT(r); err != nil {
		fail(w, http.StatusUnauthorized, err.Error())
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if _, ok := s.installations[id]; err != nil || !ok {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	b := make([]byte, 18)
	rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	expires := s.now().Add(s.tokenTTL).UTC().Truncate(time.Second)
	s.tokens[tok] = token{installation: id, expires: expires}
	s.tokensIssued[id]++
	reply(w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           expires.Format(time.RFC3339),
		"permissions":          s.grants[id],
		"repository_selection": "selected",
	})
}

// checkJWT verifies the App's JWT as GitHub does; s.mu must be held.
func (s *Server) checkJWT(r *http.Request) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return fmt.Errorf("a JSON web token is required to access this endpoint")
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return s.key, nil
	}, jwt.WithoutClaimsValidation())
	if err != nil {
		return fmt.Errorf("a JSON web token could not be decoded: %v", err)
	}
	now := s.now()
	switch {
	case claims.Issuer != strconv.FormatInt(s.appID, 10):
		return fmt.Errorf("the JWT issuer %q is not this app", claims.Issuer)
	case claims.ExpiresAt == nil || claims.IssuedAt == nil:
		return fmt.Errorf("the JWT needs exp and iat")
	case !claims.ExpiresAt.After(now):
		return fmt.Errorf("the JWT has expired")
	case claims.IssuedAt.After(now.Add(time.Minute)):
		return fmt.Errorf("the JWT's iat is in the future")
	case claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute:
		return fmt.Errorf("the JWT's exp is too far in the future")
	}
	return nil
}

// installationFor checks the installation token of a repository call and
// that the installation holds one of the permissions the route needs (at
// least the given level), and answers the failure itself; s.mu must be
// held.
func (s *Server) installationFor(w http.ResponseWriter, r *http.Request, needs ...grant) (int64, bool) {
	auth := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "token ")
	if !ok {
		raw, ok = strings.CutPrefix(auth, "Bearer ")
	}
	t, known := s.tokens[raw]
	if !ok || !known || !t.expires.After(s.now()) {
		fail(w, http.StatusUnauthorized, "Bad credentials")
		return 0, false
	}
	repo := r.PathValue("owner") + "/" + r.PathValue("repo")
	if !slices.ContainsFunc(s.installations[t.installation], func(r string) bool { return strings.EqualFold(r, repo) }) {
		fail(w, http.StatusNotFound, "Not Found")
		return 0, false
	}
	if len(needs) > 0 && !slices.ContainsFunc(needs, func(g grant) bool { return levels[s.grants[t.installation][g.name]] >= levels[g.level] }) {
		fail(w, http.StatusForbidden, "Resource not accessible by integration")
		return 0, false
	}
	return t.installation, true
}

// grant is an installation permission a route needs.
type grant struct{ name, level string }

// levels orders the levels of an installation permission.
var levels = map[string]int{"read": 1, "write": 2, "admin": 3}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w, RoutePermission) {
		return
	}
	// "Metadata" repository permission (read), which every App has.
	if _, ok := s.installationFor(w, r, grant{"metadata", "read"}); !ok {
		return
	}
	user := r.PathValue("user")
	role, ok := s.roleOf(r.PathValue("owner"), r.PathValue("repo"), user)
	if !ok {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	reply(w, http.StatusOK, map[string]any{"permission": s.legacyPermission(r.PathValue("owner"), role),
		"role_name": role, "user": map[string]any{"login": user}})
}

func (s *Server) comment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w, RouteComment) {
		return
	}
	// "Issues" or "Pull requests" repository permission (write).
	inst, ok := s.installationFor(w, r, grant{"issues", "write"}, grant{"pull_requests", "write"})
	if !ok {
		return
	}
	number, err := strconv.Atoi(r.PathValue("number"))
	if err != nil {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || in.Body == nil || *in.Body == "" {
		fail(w, http.StatusUnprocessableEntity, "Validation Failed: body is required")
		return
	}
	if len(*in.Body) > 65536 {
		fail(w, http.StatusUnprocessableEntity, "Validation Failed: body is too long (maximum is 65536 characters)")
		return
	}
	s.seq++
	c := Comment{ID: s.seq, Installation: inst, Repo: r.PathValue("owner") + "/" + r.PathValue("repo"), Number: number, Body: *in.Body}
	s.comments = append(s.comments, c)
	reply(w, http.StatusCreated, map[string]any{
		"id":                 c.ID,
		"body":               c.Body,
		"user":               map[string]any{"login": BotLogin, "type": "Bot"},
		"author_association": "NONE",
		"html_url":           fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", c.Repo, number, c.ID),
	})
}

// reactionContents are the reactions GitHub knows.
var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

func (s *Server) reaction(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w, RouteReaction) {
		return
	}
	// "Issues" or "Pull requests" repository permission (write).
	inst, ok := s.installationFor(w, r, grant{"issues", "write"}, grant{"pull_requests", "write"})
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	var in struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || !slices.Contains(reactionContents, in.Content) {
		fail(w, http.StatusUnprocessableEntity, "Validation Failed: content is not a reaction")
		return
	}
	rc := Reaction{Installation: inst, Repo: r.PathValue("owner") + "/" + r.PathValue("repo"), CommentID: id, Content: in.Content}
	status := http.StatusCreated
	if slices.Contains(s.reactions, rc) {
		status = http.StatusOK // GitHub answers 200 for a reaction already there
	} else {
		s.reactions = append(s.reactions, rc)
	}
	reply(w, status, map[string]any{"id": len(s.reactions), "content": in.Content, "user": map[string]any{"login": BotLogin}})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}
