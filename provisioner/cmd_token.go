package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

func cmdToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "token", []subcommand{{"create", tokenCreate}, {"list", tokenList}, {"revoke", tokenRevoke}}, args, getenv, stdout, stderr)
}

// tokenCreate prints a new token alone on stdout: it is shown this once and
// stored only as a hash. Limit flags set the account's limits, also for an
// existing account; a limit flag not given keeps the account's limit (or
// the default for a new account): 0 is a value, not "unset".
func tokenCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", "Create an API token for an account (created if new) and print it. The token is shown once.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	account := fs.String("account", "", "account the token acts as (required)")
	priv := fs.Bool("allow-privileged", false, "the token may create privileged clusters")
	service := fs.Bool("service", false, "a service token (the GitHub App): may act on every account's clusters")
	maxClusters := &limitFlag{min: 0}
	fs.Var(maxClusters, "max-clusters", fmt.Sprintf("set the account's limit of clusters running in parallel to `number`; 0 suspends the account (default %d for a new account)", cluster.DefaultMaxClusters))
	maxMinutes := &limitFlag{min: 1}
	fs.Var(maxMinutes, "max-minutes-to-live", fmt.Sprintf("set the account's maximum minutes-to-live to `number`, at least 1 (default %d for a new account)", cluster.DefaultMaxMinutesToLive))
	maxStopped := &limitFlag{min: 0}
	fs.Var(maxStopped, "max-stopped-clusters", fmt.Sprintf("set the account's limit of stopped clusters to `number`; 0 allows none (default %d for a new account)", cluster.DefaultMaxStoppedClusters))
	desc := fs.String("description", "", "a note to tell tokens apart in 'token list'")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *account == "" {
		return fmt.Errorf("%w: --account is required", errUsage)
	}
	// The limits to set are the flags given (on the command line or in the
	// environment), whatever their value.
	var limits sqlite.AccountLimits
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "max-clusters":
			limits.MaxClusters = &maxClusters.n
		case "max-minutes-to-live":
			limits.MaxMinutesToLive = &maxMinutes.n
		case "max-stopped-clusters":
			limits.MaxStoppedClusters = &maxStopped.n
		}
	})
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	before, err := db.AccountByName(ctx, *account)
	existed := err == nil
	if err != nil && cluster.ErrorCode(err) != cluster.ENOTFOUND {
		return err
	}
	a, err := db.EnsureAccount(ctx, *account, limits)
	if err != nil {
		return err
	}
	secret, prefix, hash := auth.NewToken()
	if _, err := db.CreateToken(ctx, sqlite.NewToken{AccountID: a.ID, Prefix: prefix, Hash: hash, AllowPrivileged: *priv, Service: *service, Description: *desc}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	if existed {
		for _, ch := range []struct {
			name     string
			was, now int
		}{
			{"max-clusters", before.MaxClusters, a.MaxClusters},
			{"max-minutes-to-live", before.MaxMinutesToLive, a.MaxMinutesToLive},
			{"max-stopped-clusters", before.MaxStoppedClusters, a.MaxStoppedClusters},
		} {
			if ch.was != ch.now {
				fmt.Fprintf(stderr, "account %q: %s changed from %d to %d, for all of its tokens\n", a.Name, ch.name, ch.was, ch.now)
			}
		}
	}
	if a.MaxClusters == 0 {
		fmt.Fprintf(stderr, "account %q is suspended (max-clusters 0): it may not create or start clusters\n", a.Name)
	}
	fmt.Fprintf(stderr, "token %s for account %q (max %d clusters, max %d minutes to live, max %d stopped clusters) — shown once, store it now\n",
		prefix, a.Name, a.MaxClusters, a.MaxMinutesToLive, a.MaxStoppedClusters)
	return nil
}

// limitFlag is an account limit given as a flag: a whole number of at
// least min. The flag parser refuses anything else, naming the flag.
type limitFlag struct {
	n, min int
}

func (l *limitFlag) String() string {
	if l == nil {
		return ""
	}
	return strconv.Itoa(l.n)
}

func (l *limitFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < l.min {
		if l.min == 0 {
			return errors.New("must not be negative")
		}
		return fmt.Errorf("must be at least %d", l.min)
	}
	l.n = n
	return nil
}

func tokenList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return listing[sqlite.Token]{
		name: "token list", usage: "List tokens (never their secrets).",
		read:   (*sqlite.DB).Tokens,
		header: "ID\tPREFIX\tACCOUNT\tPRIVILEGED\tSERVICE\tCREATED\tREVOKED\tDESCRIPTION",
		cells: func(t sqlite.Token) []any {
			revoked := "-"
			if !t.RevokedAt.IsZero() {
				revoked = t.RevokedAt.Format(time.RFC3339)
			}
			return []any{t.ID, t.Prefix, t.Account, t.AllowPrivileged, t.Service, t.CreatedAt.Format(time.RFC3339), revoked, t.Description}
		},
	}.run(ctx, args, getenv, stdout, stderr)
}

func tokenRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token revoke ID|PREFIX", "Revoke a token by its id or prefix (from 'token list').", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one token by id or prefix", errUsage)
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.RevokeToken(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
	return nil
}
