package githubapp

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Reactions the App leaves on a command comment.
const (
	ReactionReceived = "eyes"
	ReactionDone     = "rocket"
	ReactionFailed   = "confused"
)

// maxAccessLookups bounds the tries to learn a commenter's access. After
// as many failures the command is refused with a reply: it never runs on
// an unchecked commenter.
const maxAccessLookups = 3

// commentJob is a "/smek ..." comment on a pull request. Its fields after
// cmd record how far the work got, so that a retry after a failed GitHub
// call resumes there: the command itself runs at most once. A job runs on
// one worker at a time, so they need no lock.
type commentJob struct {
	app          *App
	log          *slog.Logger
	installation int64
	owner, repo  string
	repoFullName string
	repoID       int64
	number       int
	closed       string // "closed" or "merged" when the pull request is not open
	commentID    int64
	user         string
	association  string // logged only: it does not tell write access
	cmd          Command

	lookups  int  // tries to learn the commenter's access
	checked  bool // the commenter may command, or the refusal is the reply
	received bool // the eyes reaction is there
	ran      bool // the command ran; reply and ok hold its outcome
	reply    string
	ok       bool
	replied  bool // the reply comment is written
}

func (a *App) planComment(delivery string, body []byte) (func(context.Context) error, string, error) {
	var e issueCommentEvent
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.Action != "created":
		// Edited or deleted comments never run a command again.
		return nil, "comment " + cluster.Truncate(e.Action, 20) + ", not created", nil
	case e.Issue == nil:
		return nil, "", missing("issue")
	case e.Comment == nil:
		return nil, "", missing("comment")
	case !e.onPullRequest():
		return nil, "comment on an issue, not a pull request", nil
	}
	cmd, ok := ParseCommand(e.Comment.Body)
	switch {
	case !ok:
		return nil, "no /smek command in the comment", nil
	case e.Comment.User.Type == "Bot":
		return nil, "comment by a bot", nil
	case e.installationID() == 0:
		return nil, "no App installation in the payload (a repository webhook cannot run commands)", nil
	case a.github == nil:
		return nil, "no GitHub App credentials configured", nil
	case e.Repository == nil || e.Repository.Owner.Login == "" || e.Repository.Name == "":
		return nil, "", missing("repository.owner.login")
	case e.Repository.ID == 0:
		return nil, "", missing("repository.id")
	case e.Issue.Number == 0:
		return nil, "", missing("issue.number")
	case e.Comment.ID == 0 || e.Comment.User.Login == "":
		return nil, "", missing("comment.user.login")
	}
	j := &commentJob{
		app:          a,
		installation: e.installationID(),
		owner:        e.Repository.Owner.Login,
		repo:         e.Repository.Name,
		repoFullName: e.Repository.FullName,
		repoID:       e.Repository.ID,
		number:       e.Issue.Number,
		closed:       e.closed(),
		commentID:    e.Comment.ID,
		user:         e.Comment.User.Login,
		association:  e.Comment.AuthorAssociation,
		cmd:          cmd,
	}
	j.log = a.log.With(logkey.Delivery, delivery, logkey.Event, "issue_comment", logkey.Installation, j.installation,
		logkey.Repository, j.repoFullName, "pull_request", j.number, logkey.User, j.user, "command", cmd.Name)
	return j.run, "", nil
}

// run checks the commenter, acknowledges, runs the command once, replies
// and reacts. A GitHub failure returns a retryable error; the next try
// skips what is done.
func (j *commentJob) run(ctx context.Context) error {
	gh := j.app.github
	if !j.checked {
		access, err := j.access(ctx)
		switch {
		case err != nil && !isPermanent(err) && j.lookups < maxAccessLookups:
			return err
		case err != nil:
			j.log.Warn("command refused: the commenter's access could not be checked", "lookups", j.lookups, logkey.Err, err)
			j.reply = fmt.Sprintf("@%s the command did not run: GitHub did not tell SMEK your access to this repository. Try again later.", j.user)
			j.ok, j.ran = false, true
		case !access.MayCommand():
			// No reaction and no reply: anyone can comment on a public
			// repository, and the App is not theirs to drive.
			j.log.Info("command ignored: the commenter has no write access",
				"permission", access.Permission, logkey.Role, access.Role, "association", j.association)
			return nil
		}
		j.checked = true
	}
	if !j.received {
		if err := gh.React(ctx, j.installation, j.owner, j.repo, j.commentID, ReactionReceived); err != nil {
			if !isPermanent(err) {
				return err
			}
			j.log.Warn("acknowledge command", logkey.Err, err)
		}
		j.received = true
	}
	if !j.ran {
		j.reply, j.ok = j.execute(ctx)
		j.ran = true
		j.log.Info("command ran", "ok", j.ok)
	}
	if !j.replied {
		if err := gh.Comment(ctx, j.installation, j.owner, j.repo, j.number, j.reply); err != nil {
			if !isPermanent(err) {
				return err
			}
			j.log.Warn("reply to command", logkey.Err, err)
		}
		j.replied = true
	}
	reaction := ReactionDone
	if !j.ok {
		reaction = ReactionFailed
	}
	if err := gh.React(ctx, j.installation, j.owner, j.repo, j.commentID, reaction); err != nil {
		if !isPermanent(err) {
			return err
		}
		j.log.Warn("react to command", logkey.Err, err)
	}
	return nil
}

// access returns the commenter's access to the repository: cached for
// AccessTTL, else from GitHub's collaborator-permission API. The comment's
// author association is not used: COLLABORATOR includes read and triage
// collaborators, and MEMBER is any member of the organization.
func (j *commentJob) access(ctx context.Context) (Access, error) {
	key := newAccessKey(j.installation, j.repoID, j.user)
	cached, ok, generation := j.app.access.get(key)
	if ok {
		return cached, nil
	}
	j.lookups++
	a, err := j.app.github.Permission(ctx, j.installation, j.owner, j.repo, j.user)
	if err != nil {
		return Access{}, fmt.Errorf("check %s's access: %w", j.user, err)
	}
	j.app.access.put(key, a, generation)
	return a, nil
}

// execute runs the command as the account linked to the installation and
// returns the reply and whether it succeeded.
func (j *commentJob) execute(ctx context.Context) (reply string, ok bool) {
	c := j.cmd
	if c.Err != nil {
		return fmt.Sprintf("@%s %s.\n\n%s", j.user, c.Err, helpText), false
	}
	if c.ClusterID != "" {
		if err := j.ofThisRepository(ctx, c.ClusterID); err != nil {
			return j.failed(c.Name+" "+c.ClusterID, err)
		}
	}
	switch c.Name {
	case CmdCreate:
		return j.create(ctx)
	case CmdList:
		return j.list(ctx)
	case CmdStop:
		cl, err := j.app.clusters.Stop(ctx, j.installation, c.ClusterID)
		return j.changed(cl, err, "stop")
	case CmdStart:
		cl, err := j.app.clusters.Start(ctx, j.installation, c.ClusterID)
		return j.changed(cl, err, "start")
	case CmdExtend:
		cl, err := j.app.clusters.Extend(ctx, j.installation, c.ClusterID, c.Minutes)
		return j.changed(cl, err, "extend")
	default:
		return helpText, true
	}
}

// ofThisRepository checks that a cluster was made for the commented
// repository, by the App or by the action in one of its runs: a command
// reaches no other cluster of the account. Another repository's cluster
// is ENOTFOUND, as one the account does not have, so that the reply does
// not tell them apart.
func (j *commentJob) ofThisRepository(ctx context.Context, id string) error {
	cl, err := j.app.clusters.Get(ctx, j.installation, id)
	if err != nil {
		return err
	}
	if cl.Run == (cluster.RunMetadata{}) || cl.Run.RepositoryID != j.repoID {
		return cluster.Errorf(cluster.ENOTFOUND, "cluster-id", "cluster %s was not made for repository %d", id, j.repoID)
	}
	return nil
}

// failed is the reply to a command the server refused. The message is the
// user-safe one; internal details stay in the log.
func (j *commentJob) failed(what string, err error) (string, bool) {
	j.log.Warn("command failed", logkey.Err, err)
	msg := cluster.ErrorMessage(err)
	if cluster.ErrorCode(err) == cluster.ENOTFOUND && j.cmd.ClusterID != "" {
		msg = fmt.Sprintf("no cluster %s made for this repository", j.cmd.ClusterID)
	}
	return fmt.Sprintf("@%s could not %s: %s", j.user, what, msg), false
}
