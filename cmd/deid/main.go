// Command deid turns the platform's event streams into aggregated,
// de-identified training datasets, with an exclusion log that compliance can
// verify. Run "deid help" for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCtx(ctx, args, stdout, stderr)
}

// runCtx runs a command line until it ends or ctx is done (a stop signal).
func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeCommandList(stderr)
		return 2
	}
	switch args[0] {
	case "--version", "-version":
		args[0] = "version"
	case "--help", "-help", "-h":
		args[0] = "help"
	}
	cmd, ok := commandFuncs(ctx)[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "deid: unknown command %q\n\n", args[0])
		writeCommandList(stderr)
		return 2
	}
	err := cmd(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "deid %s: %v\n", args[0], err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// commandFunc runs one subcommand with its arguments.
type commandFunc func(args []string, stdout, stderr io.Writer) error

// commandFuncs maps each subcommand to its function; ctx stops a run.
func commandFuncs(ctx context.Context) map[string]commandFunc {
	return map[string]commandFunc{
		"run":        func(a []string, o, e io.Writer) error { return cmdRun(ctx, a, o, e) },
		"gen":        cmdGen,
		"verify":     func(a []string, o, e io.Writer) error { return cmdVerify(ctx, a, o, e) },
		"exclusions": func(a []string, o, e io.Writer) error { return cmdExclusions(ctx, a, o, e) },
		"report":     func(a []string, o, e io.Writer) error { return cmdReport(ctx, a, o, e) },
		"describe":   cmdDescribe,
		"rollup":     cmdRollup,
		"keygen":     cmdKeygen,
		"version":    cmdVersion,
		"help":       cmdHelp,
	}
}

// writeCommandList writes the commands with their usage lines and what
// they do, without their flags (deid help has those).
func writeCommandList(w io.Writer) {
	fmt.Fprint(w, helpHeader)
	for _, c := range commands {
		fmt.Fprintf(w, "\n  deid %s\n%s\n", c.usage, wrap(c.summary, "      ", 76))
	}
	fmt.Fprint(w, "\n\"deid help\" lists every command's flags; \"deid <command> --help\" shows one command in full.\n")
	fmt.Fprint(w, helpFooter)
}
