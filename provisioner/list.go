package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/smek/action/internal/sqlite"
)

// listing is a "list" subcommand that reads rows from the database and
// prints them as a table, or as JSON with --json.
type listing[T any] struct {
	name, usage string
	// read is a method expression of the store, e.g. (*sqlite.DB).Tokens.
	read func(db *sqlite.DB, ctx context.Context) ([]T, error)
	// asJSON is what --json prints for one row (nil: the row itself).
	asJSON func(T) any
	// header names the table's columns, tab-separated; cells gives one
	// row's cells in that order.
	header string
	cells  func(T) []any
}

func (l listing[T]) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet(l.name, l.usage, stderr)
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
	rows, err := l.read(db, ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]any, 0, len(rows))
		for _, r := range rows {
			if l.asJSON == nil {
				out = append(out, r)
			} else {
				out = append(out, l.asJSON(r))
			}
		}
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, l.header)
	for _, r := range rows {
		for i, c := range l.cells(r) {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
