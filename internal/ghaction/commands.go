package ghaction

import (
	"fmt"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// Commands issues file commands (outputs, env for later steps, state for
// the post step, the job summary) through go-githubactions, returning
// errors where the library panics, and refusing values that could smuggle
// extra lines into the runner's files.
type Commands struct {
	A      *githubactions.Action
	Getenv func(string) string
}

// fileCommand runs issue, which writes name=value to the file named by
// the variable file, turning the library's panic on an unwritable file into
// an error. what names the command in errors ("output", "env", "state").
func (c Commands) fileCommand(file, what, name, value string, issue func()) (err error) {
	if c.Getenv(file) == "" {
		return fmt.Errorf("set %s %s: %s is not set (not running in GitHub Actions?)", what, name, file)
	}
	if name == "" || strings.ContainsAny(name, "\r\n=<") {
		return fmt.Errorf("set %s %q: not a valid name", what, name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("set %s %s: the value spans lines", what, name)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("set %s %s: %v", what, name, r)
		}
	}()
	issue()
	return nil
}

// SetOutput sets a step output.
func (c Commands) SetOutput(name, value string) error {
	return c.fileCommand("GITHUB_OUTPUT", "output", name, value, func() { c.A.SetOutput(name, value) })
}

// SetEnv sets an environment variable for later steps.
func (c Commands) SetEnv(name, value string) error {
	return c.fileCommand("GITHUB_ENV", "env", name, value, func() { c.A.SetEnv(name, value) })
}

// SaveState saves a value for the post step, where it arrives as
// STATE_<name>.
func (c Commands) SaveState(name, value string) error {
	return c.fileCommand("GITHUB_STATE", "state", name, value, func() { c.A.SaveState(name, value) })
}

// AddStepSummary appends Markdown to the job summary. Without a summary
// file it does nothing: the summary is a courtesy.
func (c Commands) AddStepSummary(markdown string) (err error) {
	if c.Getenv("GITHUB_STEP_SUMMARY") == "" {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write job summary: %v", r)
		}
	}()
	c.A.AddStepSummary(markdown)
	return nil
}
