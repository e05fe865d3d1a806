// Command sluice is a MySQL/MariaDB binlog change-data-capture and
// replication tool.
//
//	sluice dump    print committed transactions from a server or binlog files
//	sluice run     replicate pipelines defined in a YAML file
//	sluice check   validate a pipeline file
//	sluice status  show each source's position, lag and state
//	sluice verify  compare source and target tables
//	sluice tail    print the messages of a NATS JetStream stream
//	sluice reset   rewrite a pipeline's checkpoint
//	sluice snapshot copy the tables of sources without a checkpoint
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	drv "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/config"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// Exit codes: 0 success, 1 runtime failure (or, for verify, a difference),
// 2 bad input: flags, configuration, DSN, privileges, server settings.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"dump", "print committed transactions from a live server or binlog files", runDump},
		{"run", "replicate the pipelines of a YAML file", runRun},
		{"status", "show each source's state, checkpoint and lag", runStatus},
		{"verify", "compare source and target tables by checksums", runVerify},
		{"tail", "print a NATS JetStream stream's messages as JSON lines", runTail},
		{"check", "validate a pipeline file", runCheck},
		{"reset", "rewrite a pipeline's checkpoint (oldest, current or a GTID set)", runReset},
		{"snapshot", "copy the tables of sources without a checkpoint, then let run stream from there", runSnapshotCmd},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "sluice", version)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout, stderr)
		return exitCode(err, stderr, c.name)
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

var version = "dev"

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sluice <command> -h' for the command's flags.")
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitWith carries an exit code chosen by the command (verify: 1 on a
// difference) without a message.
type exitWith struct{ code int }

func (e exitWith) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(err error, stderr io.Writer, cmd string) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ew exitWith
	if errors.As(err, &ew) {
		return ew.code
	}
	if errors.Is(err, context.Canceled) {
		return exitOK // interrupted by a signal: a clean stop
	}
	fmt.Fprintf(stderr, "sluice %s: %s\n", cmd, oneLine(err.Error()))
	var ue *usageError
	var be *mysqlconn.UserError
	var cp *configProblems
	if errors.As(err, &ue) || errors.As(err, &be) || errors.As(err, &cp) || isConfigError(err) {
		return exitUsage
	}
	return exitFail
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ") }

// logFlags are --log-level and --log-format, which override the pipeline
// file's log: section.
type logFlags struct{ level, format string }

func addLogFlags(fs *flag.FlagSet) *logFlags {
	var l logFlags
	fs.StringVar(&l.level, "log-level", "", "log level: debug, info, warn, error (run and reset: default the file's log.level; other commands: warn)")
	fs.StringVar(&l.format, "log-format", "", "log format: text or json (run and reset: default the file's log.format; other commands: text)")
	return &l
}

// logger is the command's logger: the file's log: section, overridden by
// the flags.
func (l *logFlags) logger(w io.Writer, cfg *config.File) (*slog.Logger, error) {
	level, format := cfg.Log.Level, cfg.Log.Format
	if l.level != "" {
		level = l.level
	}
	if l.format != "" {
		format = l.format
	}
	return newLogger(w, level, format)
}

// oneShot is the logger of a command that is not the daemon (status,
// verify, check, tail): the flags, or warnings as text. The pipeline
// file's log: section is the daemon's. It is also slog's default, for
// what libraries log.
func (l *logFlags) oneShot(w io.Writer) (*slog.Logger, error) {
	level, format := l.level, l.format
	if level == "" {
		level = "warn"
	}
	log, err := newLogger(w, level, format)
	if err == nil {
		slog.SetDefault(log)
	}
	return log, err
}

// newLogger writes structured logs to stderr.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var log *slog.Logger
	switch format {
	case "text", "":
		log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, usagef("--log-format %q: want text or json", format)
	}
	// The MySQL driver's own messages ("unexpected EOF" when a server goes
	// away) are details of errors sluice logs itself: debug lines.
	_ = drv.SetLogger(driverLog{log})
	return log, nil
}

type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) {
	d.log.Debug("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// newFlags makes a command's flag set, printing usage and then the flags.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// parseFlags parses args; a bad flag is a usage error (exit 2). Flags may
// come after positional arguments (sluice dump FILE --format sql), as with
// most CLIs; "--" ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leaves exactly the positional arguments in fs.Args().
	return fs.Parse(append([]string{"--"}, positional...))
}

// configFlag declares -c FILE; the file may also be the one positional
// argument (sluice run FILE).
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "", "pipeline file (or give it as the argument)")
}

// configPath is the -c file of a command, or its one positional argument.
func configPath(fs *flag.FlagSet, path string) (string, error) {
	switch {
	case path == "" && fs.NArg() == 1:
		return fs.Arg(0), nil
	case fs.NArg() > 0:
		return "", usagef("unexpected arguments %q: give the pipeline file once, with -c FILE or as the argument", fs.Args())
	case path == "":
		return "", usagef("give the pipeline file with -c FILE")
	}
	return path, nil
}

// loadConfig loads the -c file of a command, or its one positional argument.
func loadConfig(fs *flag.FlagSet, path string) (*config.File, error) {
	path, err := configPath(fs, path)
	if err != nil {
		return nil, err
	}
	return config.Load(path)
}

// checkPipelines requires every name given with --pipeline to be one of
// the file's pipelines.
func checkPipelines(cfg *config.File, names []string) error {
	for _, n := range names {
		if !slices.ContainsFunc(cfg.Pipelines, func(p *config.Pipeline) bool { return p.Name == n }) {
			var have []string
			for _, p := range cfg.Pipelines {
				have = append(have, p.Name)
			}
			return usagef("no pipeline named %q in %s (it has: %s)", n, cfg.Path, strings.Join(have, ", "))
		}
	}
	return nil
}

// listFlag collects a repeatable flag; each use may also hold a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
