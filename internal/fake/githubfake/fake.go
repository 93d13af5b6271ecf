// Package githubfake is a stateful fake of the parts of GitHub's REST API
// that SMEK's GitHub App uses, served by httptest for tests that drive the
// real go-github and ghinstallation clients.
//
// It checks what GitHub checks: the App's JWT (RS256, signed by the App's
// key, issued by the App id, at most ten minutes long) on
// POST /app/installations/{id}/access_tokens, and an unexpired installation
// token, valid for the repository and holding the permission the route
// needs, on every repository call, which spends one request of the
// installation's primary rate limit. It records comments and reactions,
// answers collaborator-permission lookups from a model of repositories,
// organizations, their members and roles (see permission.go), and can fail
// chosen routes on demand, answer them with a secondary rate limit, or
// leave them hanging. Routes are served at the root and under /api/v3
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
	secondary    map[string][]secondaryLimit
	hangs        map[string][]chan struct{} // route → requests still to leave hanging
	limits       map[int64]*rateLimit

	// release is closed by Close, so that hanging handlers return.
	release chan struct{}
}

// rateLimit is an installation's primary rate limit window.
type rateLimit struct {
	limit, used int
	reset       time.Time
}

// secondaryLimit is an injected secondary rate limit answer.
type secondaryLimit struct {
	status     int
	retryAfter time.Duration
}

// Messages and documentation links of GitHub's rate limit answers.
const (
	primaryDocs   = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
	secondaryDocs = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	secondaryMsg  = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)

// DefaultRateLimit is the primary rate limit of an installation per hour
// (GitHub gives installations at least 5,000).
const DefaultRateLimit = 5000

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
		secondary:     map[string][]secondaryLimit{},
		hangs:         map[string][]chan struct{}{},
		limits:        map[int64]*rateLimit{},
		seq:           1000,
		requests:      map[string]int{},
		release:       make(chan struct{}),
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

// Close stops the fake; requests left hanging by Hang return unanswered.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.mu.Unlock()
	s.Server.Close()
}

// AddInstallation installs the App on repositories ("owner/name"), with
// DefaultGrants and the DefaultRateLimit for the hour to come.
func (s *Server) AddInstallation(id int64, repos ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installations[id] = append(s.installations[id], repos...)
	if _, ok := s.grants[id]; !ok {
		s.grants[id] = maps.Clone(DefaultGrants)
	}
	if s.limits[id] == nil {
		s.limits[id] = &rateLimit{limit: DefaultRateLimit, reset: s.now().Add(time.Hour).Truncate(time.Second)}
	}
}

// SetRateLimit sets an installation's primary rate limit window: limit
// requests, of which remaining are left until reset. Every repository
// call with the installation's token spends one and reports the window in
// its X-RateLimit-* headers; with none left GitHub answers 403 with
// X-RateLimit-Remaining: 0 and the reset time in X-RateLimit-Reset. The
// fake's window does not roll over on its own: a test that moves its
// clock past reset calls SetRateLimit again.
func (s *Server) SetRateLimit(installation int64, limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[installation] = &rateLimit{limit: limit, used: limit - remaining, reset: reset.Truncate(time.Second)}
}

// SecondaryRateLimit makes the next request to route answer as GitHub does
// when a secondary rate limit is hit: status (403 or 429) with a message
// saying so, and Retry-After when retryAfter is not zero (GitHub sends it
// on some of these answers only).
func (s *Server) SecondaryRateLimit(route string, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary[route] = append(s.secondary[route], secondaryLimit{status: status, retryAfter: retryAfter})
}

// Hang makes the next request to route go unanswered: the fake holds it
// until the client gives up or the fake is closed, as a stuck connection
// does. The channel returned is closed when that request has arrived.
func (s *Server) Hang(route string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	arrived := make(chan struct{})
	s.hangs[route] = append(s.hangs[route], arrived)
	return arrived
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

// injected answers an injected failure of route: a hang, a secondary
// rate limit or a status. s.mu must be held; a hang releases it while it
// waits and takes it again.
func (s *Server) injected(w http.ResponseWriter, r *http.Request, route string) bool {
	s.requests[route]++
	if q := s.hangs[route]; len(q) > 0 {
		s.hangs[route] = q[1:]
		close(q[0])
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		s.mu.Lock()
		return true
	}
	if q := s.secondary[route]; len(q) > 0 {
		s.secondary[route] = q[1:]
		if q[0].retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(q[0].retryAfter/time.Second)))
		}
		reply(w, q[0].status, map[string]string{"message": secondaryMsg, "documentation_url": secondaryDocs})
		return true
	}
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
	if s.injected(w, r, RouteAccessToken) {
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
	if !s.spend(w, t.installation) {
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

// spend counts a request against the installation's primary rate limit
// and sets the X-RateLimit-* headers; with no request left it answers the
// 403 itself. s.mu must be held.
func (s *Server) spend(w http.ResponseWriter, installation int64) bool {
	l := s.limits[installation]
	if l == nil {
		return true
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(l.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	if l.used >= l.limit {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(l.limit))
		reply(w, http.StatusForbidden, map[string]string{
			"message":           fmt.Sprintf("API rate limit exceeded for installation ID %d.", installation),
			"documentation_url": primaryDocs,
		})
		return false
	}
	l.used++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(l.limit-l.used))
	h.Set("X-RateLimit-Used", strconv.Itoa(l.used))
	return true
}

// grant is an installation permission a route needs.
type grant struct{ name, level string }

// levels orders the levels of an installation permission.
var levels = map[string]int{"read": 1, "write": 2, "admin": 3}

func (s *Server) permission(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w, r, RoutePermission) {
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
	if s.injected(w, r, RouteComment) {
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
	if s.injected(w, r, RouteReaction) {
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
