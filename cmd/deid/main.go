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

const usage = `deid — privacy-safe training data from the platform's event streams

Usage:
  deid run     [--config deid.yaml] [--input PATH]... [--settings FILE] [--out DIR]
               Read events (NDJSON files in file mode), drop everything the privacy
               policy forbids, aggregate into k-anonymous cells and write Parquet
               datasets, manifests, the exclusion log and dead letters under --out.
               With no config it runs on the embedded defaults (file mode, input
               sample/, settings sample/settings.ndjson, output out/).
               --check validates the configuration and exits.
  deid gen     [--seed N] [--events N] [--partitions N] [--workspaces N] [--days N]
               [--start 2026-11-01] [--gzip] [--out DIR]
               Write seeded, realistic sample events (one file per partition) and
               a settings file, with every hazard the pipeline must handle.
  deid version Print the version.
  deid help    Print this help; "deid <command> --help" lists a command's flags.

Exit status: 0 on success, 1 when the run failed, 2 on bad usage or configuration.
`

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
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "deid %s\n", version)
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "deid: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
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
