package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/sqlite"
)

func cmdToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "token", []subcommand{{"create", tokenCreate}, {"list", tokenList}, {"revoke", tokenRevoke}}, args, getenv, stdout, stderr)
}

// tokenCreate prints a new token alone on stdout: it is shown this once and
// stored only as a hash.
func tokenCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", "Create an API token for an account (created if new) and print it. The token is shown once.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	account := fs.String("account", "", "account the token acts as (required)")
	priv := fs.Bool("allow-privileged", false, "the token may create privileged clusters")
	service := fs.Bool("service", false, "a service token (the GitHub App): may act on every account's clusters")
	maxClusters := fs.Int("max-clusters", 0, "set the account's limit of clusters running in parallel (default 5 for a new account)")
	maxMinutes := fs.Int("max-minutes-to-live", 0, "set the account's maximum minutes-to-live (default 1440 for a new account)")
	desc := fs.String("description", "", "a note to tell tokens apart in 'token list'")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *account == "" {
		return fmt.Errorf("%w: --account is required", errUsage)
	}
	var limits sqlite.AccountLimits
	if *maxClusters < 0 || *maxMinutes < 0 {
		return fmt.Errorf("%w: --max-clusters and --max-minutes-to-live must be positive", errUsage)
	}
	if *maxClusters > 0 {
		limits.MaxClusters = maxClusters
	}
	if *maxMinutes > 0 {
		limits.MaxMinutesToLive = maxMinutes
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := db.EnsureAccount(ctx, *account, limits)
	if err != nil {
		return err
	}
	secret, prefix, hash := auth.NewToken()
	if _, err := db.CreateToken(ctx, sqlite.NewToken{AccountID: a.ID, Prefix: prefix, Hash: hash, AllowPrivileged: *priv, Service: *service, Description: *desc}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	fmt.Fprintf(stderr, "token %s for account %q (max %d clusters, max %d minutes to live) — shown once, store it now\n", prefix, a.Name, a.MaxClusters, a.MaxMinutesToLive)
	return nil
}

func tokenList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token list", "List tokens (never their secrets).", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	ts, err := db.Tokens(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, ts)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tACCOUNT\tPRIVILEGED\tSERVICE\tCREATED\tREVOKED\tDESCRIPTION")
	for _, t := range ts {
		revoked := "-"
		if !t.RevokedAt.IsZero() {
			revoked = t.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%t\t%t\t%s\t%s\t%s\n", t.ID, t.Prefix, t.Account, t.AllowPrivileged, t.Service, t.CreatedAt.Format(time.RFC3339), revoked, t.Description)
	}
	return tw.Flush()
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
