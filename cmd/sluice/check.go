package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-cdc/sluice/config"
)

const checkUsage = `usage: sluice check -c FILE
       sluice check --keys

Validates a pipeline file and prints every problem (file:line:column: key:
message); exits 2 when there is one. --keys prints the reference of every
configuration key.

flags:
`

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", checkUsage, stderr)
	path := configFlag(fs)
	keys := fs.Bool("keys", false, "print the reference of every configuration key")
	logs := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := logs.oneShot(stderr); err != nil {
		return err
	}
	if *keys {
		fmt.Fprint(stdout, config.Docs())
		return nil
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	} else if *path == "" || fs.NArg() > 0 {
		return usagef("give the pipeline file once, with -c FILE or as the argument")
	}
	f, err := config.Load(*path)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			// Every problem, one per line, then a one-line summary.
			fmt.Fprintln(stderr, es.Error())
			return &configProblems{n: len(es)}
		}
		return err
	}
	var names []string
	for _, p := range f.Pipelines {
		names = append(names, fmt.Sprintf("%s (%d source(s) -> %s)", p.Name, len(p.Sources), p.Sink.Type))
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", *path, strings.Join(names, ", "))
	return nil
}

// configProblems reports that problems were already printed.
type configProblems struct{ n int }

func (e *configProblems) Error() string {
	return fmt.Sprintf("%d problem(s) in the configuration", e.n)
}
