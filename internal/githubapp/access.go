package githubapp

import (
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Access is a user's access to a repository as GitHub's
// collaborator-permission API reports it: the highest role the user has
// from any grant (the repository, a team, the organization's base role,
// the repository being public).
type Access struct {
	// Permission is the legacy base role: "admin", "write", "read" or
	// "none". GitHub reports maintain as write and triage as read here.
	Permission string
	// Role is the role's name: "admin", "maintain", "write", "triage",
	// "read", or a custom role's name; "" when GitHub gives none.
	Role string
}

// NoAccess is the access of a user GitHub does not know as a collaborator.
var NoAccess = Access{Permission: "none", Role: "none"}

// MayCommand reports whether the access allows running commands. The base
// roles decide by name: admin, maintain and write may, triage and read may
// not. A custom role (or an answer without a role name) decides by the
// base permission it maps to: admin or write.
func (a Access) MayCommand() bool {
	switch a.Role {
	case "admin", "maintain", "write":
		return true
	case "triage", "read", "none":
		return false
	}
	return a.Permission == "admin" || a.Permission == "write"
}

// AccessTTL is how long the App trusts a looked-up access. The member,
// membership, organization and team events end it sooner, when the App
// receives them.
const AccessTTL = time.Minute

// maxCachedAccess bounds the cache; past it expired entries are dropped,
// and if none expired the cache starts over.
const maxCachedAccess = 4096

// accessKey names a user on a repository of an installation. The login is
// lower case: GitHub's logins are case-insensitive.
type accessKey struct {
	installation int64
	repoID       int64
	user         string
}

type accessEntry struct {
	access  Access
	expires time.Time
}

// accessCache remembers looked-up access for AccessTTL. A lookup that was
// under way while an entry was forgotten is not stored: its answer may
// predate the change that made the App forget.
type accessCache struct {
	clock clockwork.Clock

	mu sync.Mutex // guards the fields below
	// generation counts forget calls; put stores only for the generation
	// its lookup started in.
	generation uint64
	entries    map[accessKey]accessEntry
}

func newAccessCache(clock clockwork.Clock) *accessCache {
	return &accessCache{clock: clock, entries: map[accessKey]accessEntry{}}
}

func newAccessKey(installation, repoID int64, user string) accessKey {
	return accessKey{installation: installation, repoID: repoID, user: strings.ToLower(user)}
}

// get returns a live entry, and the generation to pass to put after a
// lookup.
func (c *accessCache) get(k accessKey) (Access, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.clock.Now().Before(e.expires) {
		return Access{}, false, c.generation
	}
	return e.access, true, c.generation
}

// put stores a looked-up access unless something was forgotten since the
// lookup started (generation).
func (c *accessCache) put(k accessKey, a Access, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	now := c.clock.Now()
	if len(c.entries) >= maxCachedAccess {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedAccess {
			clear(c.entries)
		}
	}
	c.entries[k] = accessEntry{access: a, expires: now.Add(AccessTTL)}
}

// forget drops the entries of an installation that match: repoID 0 is
// every repository, user "" every user.
func (c *accessCache) forget(installation, repoID int64, user string) {
	user = strings.ToLower(user)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	for k := range c.entries {
		if k.installation == installation && (repoID == 0 || k.repoID == repoID) && (user == "" || k.user == user) {
			delete(c.entries, k)
		}
	}
}
