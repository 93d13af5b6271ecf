package githubapp

import (
	"context"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// The events that change who may do what in a repository make the App
// forget the access it looked up, so that a removed collaborator cannot
// command on a cached answer. GitHub sends them to an App with the
// "Members" organization permission (read); without it a change takes
// effect within AccessTTL.

// memberEvent is a collaborator added to, removed from, or changed on a
// repository; membershipEvent a user added to or removed from a team.
type memberEvent struct {
	envelope
	Member *userRef `json:"member"`
}

// organizationEvent is a change of an organization's members.
type organizationEvent struct {
	envelope
	Membership *struct {
		User *userRef `json:"user"`
	} `json:"membership"`
}

// forgetAccess returns the work that forgets the cached access of an
// installation's user on a repository (repoID 0: every repository; user
// "": every user).
func (a *App) forgetAccess(delivery, event string, installation, repoID int64, user string) func(context.Context) error {
	return func(context.Context) error {
		a.access.forget(installation, repoID, user)
		a.log.Info("cached repository access forgotten", logkey.Delivery, delivery, logkey.Event, event,
			logkey.Installation, installation, "repository_id", repoID, logkey.User, user)
		return nil
	}
}

func (a *App) planMember(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e memberEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.installationID() == 0:
		return nil, "no App installation in the payload", nil
	case e.Repository == nil || e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case e.Member == nil || e.Member.Login == "":
		return nil, "", missing("member.login")
	}
	return a.forgetAccess(delivery, "member", e.installationID(), e.Repository.ID, e.Member.Login), "", nil
}

func (a *App) planMembership(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e memberEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.installationID() == 0:
		return nil, "no App installation in the payload", nil
	case e.Member == nil || e.Member.Login == "":
		return nil, "", missing("member.login")
	}
	// A team may reach any of the installation's repositories.
	return a.forgetAccess(delivery, "membership", e.installationID(), 0, e.Member.Login), "", nil
}

func (a *App) planOrganization(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e organizationEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.installationID() == 0:
		return nil, "no App installation in the payload", nil
	case e.Action == "member_invited" || e.Action == "renamed":
		return nil, "organization " + cluster.Truncate(e.Action, 20) + " changes no access", nil
	case e.Membership != nil && e.Membership.User != nil && e.Membership.User.Login != "":
		return a.forgetAccess(delivery, "organization", e.installationID(), 0, e.Membership.User.Login), "", nil
	}
	return a.forgetAccess(delivery, "organization", e.installationID(), 0, ""), "", nil
}

func (a *App) planTeam(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e envelope
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.installationID() == 0:
		return nil, "no App installation in the payload", nil
	case e.Action == "created":
		return nil, "a new team has no access yet", nil
	}
	// The payload does not list the team's members: forget everyone's
	// access to the repository, or to all of them.
	var repoID int64
	if e.Repository != nil {
		repoID = e.Repository.ID
	}
	return a.forgetAccess(delivery, "team", e.installationID(), repoID, ""), "", nil
}
