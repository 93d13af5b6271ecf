package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

// cmdAccount manages accounts' GitHub App installations: clusters made from
// an installation's pull-request comments belong to the linked account and
// count against its limits.
func cmdAccount(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "account", []subcommand{{"link", accountLink}, {"unlink", accountUnlink}, {"list", accountList}}, args, getenv, stdout, stderr)
}

func accountLink(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("account link", "Tie a GitHub App installation to an account (create the account first, e.g. with 'token create --account NAME').", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	account := fs.String("account", "", "the account (required)")
	installation := fs.Int64("github-installation-id", 0, "the installation id: the number at the end of the installation's settings URL, or installation.id of its webhooks (required)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	switch {
	case *account == "":
		return fmt.Errorf("%w: --account is required", errUsage)
	case *installation <= 0:
		return fmt.Errorf("%w: --github-installation-id must be a positive number", errUsage)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := db.LinkInstallation(ctx, *account, *installation)
	if err != nil {
		if cluster.ErrorCode(err) == cluster.ENOTFOUND {
			return fmt.Errorf("%w (create it with: provisioner token create --account %s)", err, *account)
		}
		return err
	}
	fmt.Fprintf(stdout, "linked GitHub App installation %d to account %q\n", a.GitHubInstallationID, a.Name)
	return nil
}

func accountUnlink(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("account unlink", "Remove the GitHub App installation of an account.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	account := fs.String("account", "", "the account (required)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *account == "" {
		return fmt.Errorf("%w: --account is required", errUsage)
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.UnlinkInstallation(ctx, *account); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "account %q has no GitHub App installation now\n", *account)
	return nil
}

// accountJSON is an account in 'account list --json'.
type accountJSON struct {
	Name                 string `json:"name"`
	MaxClusters          int    `json:"max-clusters"`
	MaxMinutesToLive     int    `json:"max-minutes-to-live"`
	MaxStoppedClusters   int    `json:"max-stopped-clusters"`
	GitHubInstallationID int64  `json:"github-installation-id,omitempty"`
}

func accountList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return listing[cluster.Account]{
		name: "account list", usage: "List accounts with their limits and GitHub App installations.",
		read: (*sqlite.DB).AccountsWithInstallations,
		asJSON: func(a cluster.Account) any {
			return accountJSON{a.Name, a.MaxClusters, a.MaxMinutesToLive, a.MaxStoppedClusters, a.GitHubInstallationID}
		},
		header: "ACCOUNT\tMAX CLUSTERS\tMAX MINUTES TO LIVE\tMAX STOPPED CLUSTERS\tGITHUB INSTALLATION",
		cells: func(a cluster.Account) []any {
			inst := "-"
			if a.GitHubInstallationID != 0 {
				inst = strconv.FormatInt(a.GitHubInstallationID, 10)
			}
			return []any{a.Name, a.MaxClusters, a.MaxMinutesToLive, a.MaxStoppedClusters, inst}
		},
	}.run(ctx, args, getenv, stdout, stderr)
}
