// Package envflag fills a flag set from the environment: every flag not
// given on the command line takes its value from an environment variable
// named after it. An environment value may be a secret (a token, a webhook
// secret), so no error of this package ever contains one.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Name returns the environment variable of a flag: Name("SMEK_", "data-dir")
// is SMEK_DATA_DIR.
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Error is an environment variable whose value its flag refused. It names
// the variable and the flag, never the value.
type Error struct {
	Var  string // the environment variable, SMEK_DATA_DIR
	Flag string // the flag it sets, data-dir
}

func (e *Error) Error() string {
	return fmt.Sprintf("$%s: not a valid value for --%s (the value is not shown: it may be a secret)", e.Var, e.Flag)
}

// Parse parses args into fs, then sets every flag not given in args from
// the environment variable varName(flag name), when that is not empty.
// Errors of fs.Parse are returned as they are (flag.ErrHelp included); a
// refused environment value is an *Error.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string, varName func(flagName string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := varName(f.Name)
		if v := getenv(name); v != "" {
			// The flag's own error may quote the value: drop it.
			if fs.Set(f.Name, v) != nil {
				err = &Error{Var: name, Flag: f.Name}
			}
		}
	})
	return err
}
