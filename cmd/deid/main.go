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
               [--state-dir DIR] [--brokers B,.. --topics T,.. --group G [--stop-at-end]]
               [--http-addr ADDR] [--check]
               Read events (NDJSON files, or Kafka topics with --brokers), drop
               everything the privacy policy forbids, aggregate into k-anonymous
               cells and write Parquet datasets, manifests, the exclusion log and
               dead letters under --out. With no config it runs on the embedded
               defaults (file mode, input sample/, settings sample/settings.ndjson,
               output out/). --state-dir keeps checkpoints: a restart resumes.
               Kafka mode runs until SIGTERM/SIGINT (or the topics' ends with
               --stop-at-end). --check validates the configuration and exits.
  deid gen     [--seed N] [--events N] [--partitions N] [--workspaces N] [--days N]
               [--start 2026-11-01] [--gzip] [--out DIR | --brokers B,.. --topic T]
               Write seeded, realistic sample events (one file per partition) and
               a settings file, with every hazard the pipeline must handle.
  deid verify  <out> [--input PATH]... [--settings FILE] [--public-key FILE] [--config FILE]
               Check an output and say what was found, one line per check: manifests
               and file hashes, the exclusion log's hash chains, the accounting, k on
               every row, the schemas; with the input, that nothing opted out,
               deleted, unknown, a message or a minor's contributed and no free text
               reached an output; with the key, every signature. Exit 1 if any fails.
  deid exclusions <out> --workspace ID [--from T] [--to T] [--input PATH]... [--settings FILE]
               Every exclusion-log entry of one workspace, and whether any of its
               records contributed to a published window after it opted out.
  deid report  <out> [--html FILE] [--input PATH]... [--settings FILE] [--public-key FILE]
               Write one self-contained HTML page of an output's figures, charts and
               verify result (default report.html).
  deid describe [--config FILE]
               Print the data dictionary of the datasets as Markdown (docs/datasets.md).
  deid keygen  --out DIR
               Write an ed25519 key pair for signing manifests and exclusion segments.
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCtx(ctx, args, stdout, stderr)
}

// runCtx runs a command line until it ends or ctx is done (a stop signal).
func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, stderr)
	case "exclusions":
		err = cmdExclusions(ctx, args[1:], stdout, stderr)
	case "report":
		err = cmdReport(ctx, args[1:], stdout, stderr)
	case "describe":
		err = cmdDescribe(args[1:], stdout, stderr)
	case "keygen":
		err = cmdKeygen(args[1:], stdout, stderr)
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
