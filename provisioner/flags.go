package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/smek/action/internal/envflag"
	"github.com/smek/action/internal/sqlite"
)

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: provisioner %s [flags]\n\n%s\n\nFlags (each also as SMEK_<NAME> in the environment, e.g. --data-dir as SMEK_DATA_DIR):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from its SMEK_* environment variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	err := envflag.Parse(fs, args, getenv, func(name string) string { return envflag.Name("SMEK_", name) })
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

// defaultDataDir is where SMEK keeps its database and cluster data unless
// told otherwise.
const defaultDataDir = "./data"

// openDB opens the database in dataDir.
func openDB(ctx context.Context, dataDir string) (*sqlite.DB, error) {
	return sqlite.Open(ctx, filepath.Join(dataDir, "smek.db"))
}

// command is a subcommand's entry point.
type command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// subcommand is one verb of a command group ("token create").
type subcommand struct {
	name string
	run  command
}

// dispatch runs the subcommand that args[0] names in group.
func dispatch(ctx context.Context, group string, subs []subcommand, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
		if len(args) > 0 && args[0] == s.name {
			return s.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "Usage: provisioner %s %s [flags]\n", group, strings.Join(names, "|"))
	if len(args) == 0 {
		return fmt.Errorf("%w: %s needs a subcommand (%s)", errUsage, group, strings.Join(names, ", "))
	}
	return fmt.Errorf("%w: unknown %s subcommand %q (%s)", errUsage, group, args[0], strings.Join(names, ", "))
}

// printJSON writes v as indented JSON, the --json output of every listing.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
