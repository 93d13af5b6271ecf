package githubfake

import (
	"fmt"
	"strings"
)

// The model behind GET /repos/{owner}/{repo}/collaborators/{user}/permission,
// after GitHub's documentation of that endpoint and of repository roles: a
// user's role is the highest of every grant — the owner of a user's
// repository is its admin, an organization's owners are admins of all its
// repositories, its members have the organization's base role, a
// collaborator (direct or through a team) has the role given, and anyone
// may read a public repository. "permission" is the legacy base role of
// that role (maintain is write, triage is read, a custom role is its base
// role's); "role_name" is the role itself. A user with no grant at all —
// only possible on a private repository — is a 404. Logins and repository
// names are case-insensitive, as on GitHub.

// repository is the access to one repository.
type repository struct {
	private bool
	// roles are the grants to collaborators: lower-case login → role.
	roles map[string]string
}

// organization is an account whose repositories have roles beyond write.
type organization struct {
	// base is the members' base role: "none", "read", "write" or "admin".
	base string
	// members maps lower-case logins to whether they are owners.
	members map[string]bool
	// custom maps custom repository roles to the role they extend.
	custom map[string]string
}

// rank orders GitHub's base repository roles.
var rank = map[string]int{"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}

// legacy maps a base role to the "permission" GitHub reports for it.
var legacy = map[string]string{"read": "read", "triage": "read", "write": "write", "maintain": "write", "admin": "admin"}

// SetPrivate makes a repository ("owner/name") private, or public again.
// Repositories are public until then.
func (s *Server) SetPrivate(repo string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repository(repo).private = private
}

// AddOrganization makes login an organization whose members have the base
// role base on its repositories: "none", "read", "write" or "admin", the
// choices GitHub offers. Accounts not added are users.
func (s *Server) AddOrganization(login, base string) {
	if base != "none" && base != "read" && base != "write" && base != "admin" {
		panic(fmt.Sprintf("githubfake: GitHub has no organization base role %q", base))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[strings.ToLower(login)] = &organization{base: base, members: map[string]bool{}, custom: map[string]string{}}
}

// AddMember makes user a member of an organization, or one of its owners.
func (s *Server) AddMember(org, user string, owner bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.organization(org).members[strings.ToLower(user)] = owner
}

// RemoveMember takes user out of an organization.
func (s *Server) RemoveMember(org, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.organization(org).members, strings.ToLower(user))
}

// AddCustomRole defines a custom repository role of an organization that
// extends base: "read", "triage", "write" or "maintain", as GitHub allows.
func (s *Server) AddCustomRole(org, name, base string) {
	if base == "admin" || rank[base] == 0 {
		panic(fmt.Sprintf("githubfake: a custom role cannot extend %q", base))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.organization(org).custom[name] = base
}

// SetRole gives user a role on a repository ("owner/name"), as a
// collaborator or through a team; "" takes it away. An organization's
// repository takes "read", "triage", "write", "maintain", "admin" or one
// of the organization's custom roles; a user's repository only "write",
// the one role GitHub gives collaborators there. A role GitHub would
// refuse panics.
func (s *Server) SetRole(repo, user, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repository(repo)
	if role == "" {
		delete(r.roles, strings.ToLower(user))
		return
	}
	owner, _, _ := strings.Cut(repo, "/")
	org := s.orgs[strings.ToLower(owner)]
	switch {
	case org == nil && role != "write":
		panic(fmt.Sprintf("githubfake: %s belongs to a user; its collaborators have write, not %q", repo, role))
	case org != nil && rank[role] == 0 && org.custom[role] == "":
		panic(fmt.Sprintf("githubfake: %s has no role %q", owner, role))
	}
	r.roles[strings.ToLower(user)] = role
}

// repository returns the access of a repository, made public when new;
// s.mu must be held.
func (s *Server) repository(repo string) *repository {
	key := strings.ToLower(repo)
	r, ok := s.repos[key]
	if !ok {
		r = &repository{roles: map[string]string{}}
		s.repos[key] = r
	}
	return r
}

// organization returns an organization added before; s.mu must be held.
func (s *Server) organization(login string) *organization {
	org, ok := s.orgs[strings.ToLower(login)]
	if !ok {
		panic(fmt.Sprintf("githubfake: %s is not an organization (AddOrganization)", login))
	}
	return org
}

// roleOf is user's highest role on owner/repo; false when the user has
// none; s.mu must be held.
func (s *Server) roleOf(owner, repo, user string) (string, bool) {
	u := strings.ToLower(user)
	org := s.orgs[strings.ToLower(owner)]
	var grants []string
	switch {
	case org == nil && strings.EqualFold(owner, user):
		grants = append(grants, "admin")
	case org != nil:
		if isOwner, member := org.members[u]; isOwner {
			grants = append(grants, "admin")
		} else if member && org.base != "none" {
			grants = append(grants, org.base)
		}
	}
	r := s.repository(owner + "/" + repo)
	if role, ok := r.roles[u]; ok {
		grants = append(grants, role)
	}
	if !r.private {
		grants = append(grants, "read")
	}
	best := ""
	for _, g := range grants {
		if best == "" || rank[baseRole(org, g)] > rank[baseRole(org, best)] {
			best = g
		}
	}
	return best, best != ""
}

// baseRole is the base role a role is or extends.
func baseRole(org *organization, role string) string {
	if rank[role] == 0 && org != nil {
		return org.custom[role]
	}
	return role
}

// legacyPermission is the "permission" GitHub reports for a role of a
// repository of owner; s.mu must be held.
func (s *Server) legacyPermission(owner, role string) string {
	return legacy[baseRole(s.orgs[strings.ToLower(owner)], role)]
}
