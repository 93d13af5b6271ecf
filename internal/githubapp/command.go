package githubapp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cluster"
)

// Command names.
const (
	CmdHelp   = "help"
	CmdCreate = "create"
	CmdList   = "list"
	CmdStop   = "stop"
	CmdStart  = "start"
	CmdExtend = "extend"
)

// commandPrefix starts a command line in a comment.
const commandPrefix = "/smek"

// Bounds of what the parser accepts; the server applies the account's own
// (smaller) limits.
const (
	maxCommandMinutes = 7 * 24 * 60
	maxVersionLen     = 32
)

// Command is a parsed "/smek ..." line.
type Command struct {
	Name string
	// Minutes is the time to live of create (0: the server's default) or
	// the extension of extend.
	Minutes    int
	Privileged bool
	// Keep asks create for a keep-cluster cluster: stop keeps its data, and
	// the App does not end it when the pull request closes.
	Keep bool
	// Version is the Kubernetes version of create ("" for the default).
	Version string
	// ClusterID names the cluster of stop, start and extend.
	ClusterID string
	// Err says what is wrong with the line; Name is then CmdHelp.
	Err error
}

// ParseCommand finds the first line of a comment that starts with "/smek"
// and parses it. ok is false when the comment holds no command (quoted
// lines, "> /smek ...", do not count). An unknown command or bad arguments
// give Name CmdHelp with Err set.
func ParseCommand(body string) (cmd Command, ok bool) {
	for line := range strings.Lines(body) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != commandPrefix {
			continue
		}
		return parseFields(fields[1:]), true
	}
	return Command{}, false
}

func parseFields(args []string) Command {
	if len(args) == 0 {
		return Command{Name: CmdHelp}
	}
	name, args := strings.ToLower(args[0]), args[1:]
	bad := func(format string, a ...any) Command {
		return Command{Name: CmdHelp, Err: fmt.Errorf(format, a...)}
	}
	switch name {
	case CmdHelp:
		return Command{Name: CmdHelp}
	case CmdList:
		if len(args) > 0 {
			return bad("`list` takes no arguments")
		}
		return Command{Name: CmdList}
	case CmdCreate:
		return parseCreate(args)
	case CmdStop, CmdStart:
		if len(args) != 1 {
			return bad("`%s` takes one cluster id: `/smek %s c-abc123`", name, name)
		}
		id, err := cluster.ParseID(args[0])
		if err != nil {
			return bad("%s", cluster.ErrorMessage(err))
		}
		return Command{Name: name, ClusterID: string(id)}
	case CmdExtend:
		if len(args) != 2 {
			return bad("`extend` takes a cluster id and minutes: `/smek extend c-abc123 30`")
		}
		id, err := cluster.ParseID(args[0])
		if err != nil {
			return bad("%s", cluster.ErrorMessage(err))
		}
		m, err := parseMinutes(args[1])
		if err != nil {
			return bad("%v", err)
		}
		return Command{Name: CmdExtend, ClusterID: string(id), Minutes: m}
	default:
		return bad("unknown command %q", cluster.Truncate(name, 20))
	}
}

func parseCreate(args []string) Command {
	c := Command{Name: CmdCreate}
	bad := func(format string, a ...any) Command {
		return Command{Name: CmdHelp, Err: fmt.Errorf(format, a...)}
	}
	for _, arg := range args {
		lower := strings.ToLower(arg)
		switch {
		case lower == "privileged" && !c.Privileged:
			c.Privileged = true
		case lower == "keep" && !c.Keep:
			c.Keep = true
		case strings.HasPrefix(lower, "version=") && c.Version == "":
			v := lower[len("version="):]
			if !validVersion(v) {
				return bad("version %q is not a Kubernetes version like 1.36.3", cluster.Truncate(v, 40))
			}
			c.Version = strings.TrimPrefix(v, "v")
		case arg[0] >= '0' && arg[0] <= '9' && c.Minutes == 0:
			m, err := parseMinutes(arg)
			if err != nil {
				return bad("%v", err)
			}
			c.Minutes = m
		default:
			return bad("`create` does not understand %q (it takes [minutes] [privileged] [keep] [version=X], each once)", cluster.Truncate(arg, 40))
		}
	}
	return c
}

func parseMinutes(s string) (int, error) {
	m, err := strconv.Atoi(s)
	if err != nil || m < 1 || m > maxCommandMinutes {
		return 0, fmt.Errorf("minutes must be a whole number from 1 to %d, got %q", maxCommandMinutes, cluster.Truncate(s, 20))
	}
	return m, nil
}

// validVersion accepts "1.36", "1.36.3", "v1.36.3", "1.36.3+k3s1".
func validVersion(v string) bool {
	v = strings.TrimPrefix(v, "v")
	if v == "" || len(v) > maxVersionLen || v[0] < '0' || v[0] > '9' {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r == '.' || r == '+' || r == '-') {
			return false
		}
	}
	return true
}

// helpText is the reply to "/smek help" and to commands not understood. No
// line starts with "/smek", so that quoting it runs nothing.
const helpText = "SMEK commands, for people whose role on this repository is admin, maintain or write " +
	"(or a custom role that extends write), as GitHub reports it when asked. " +
	"They reach only the clusters made for this repository, by these commands or by the SMEK action in its runs:\n\n" +
	"- `/smek create [minutes] [privileged] [keep] [version=X]` — a cluster for this pull request, while it is open; " +
	"it ends when the pull request closes unless `keep` is given\n" +
	"- `/smek list` — this pull request's clusters\n" +
	"- `/smek stop <id>` — stop a cluster (one made without `keep` is terminated)\n" +
	"- `/smek start <id>` — start a stopped cluster again\n" +
	"- `/smek extend <id> <minutes>` — move a cluster's deadline\n" +
	"- `/smek help` — this text\n"
