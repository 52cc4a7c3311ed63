package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
	"github.com/mya/deid/sinks/signing"
	"github.com/mya/deid/transforms/aggregate"
)

// errNotVerified is cmdVerify's error when a check failed: the report
// already says why, so main prints nothing more and exits 1.
var errNotVerified = errors.New("the output did not verify")

// verifyFlags are the flags verify, exclusions and report share: where
// the input and the settings are, the config the run used, the public key.
type verifyFlags struct {
	config, settings, publicKey, unknown, anchors string
	inputs                                        stringList
	// storage is the storage block of --config: how to reach an s3://
	// output or anchor log.
	storage objstore.Config
}

func (f *verifyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "the run's YAML config: its datasets, input exclusions and consent.unknown_workspaces (default: the embedded defaults)")
	fs.Var(&f.inputs, "input", "the run's input file, directory or glob (repeatable): check the output against it line by line")
	fs.StringVar(&f.settings, "settings", "", "the run's settings NDJSON file (with --input)")
	fs.StringVar(&f.publicKey, "public-key", "", "ed25519 public key (PEM or base64, as deid keygen writes): check every signature")
	fs.StringVar(&f.anchors, "anchors", "", "the anchor log the run appended to (default: anchors.file of --config): fail if anything anchored is missing from the output or differs")
	fs.StringVar(&f.unknown, "unknown-workspaces", "", `the run's consent.unknown_workspaces, "exclude" or "include" (default: from --config, else "exclude")`)
}

// options turns the flags into verify.Options.
func (f *verifyFlags) options() (verify.Options, error) {
	var opts verify.Options
	cfg, err := loadConfig(f.config)
	if err != nil {
		return opts, &exitError{code: 2, err: err}
	}
	specs, err := aggregate.Build(aggregate.Config{Datasets: cfg.Datasets}, os.DirFS("."))
	if err != nil {
		return opts, &exitError{code: 2, err: fmt.Errorf("datasets: %w", err)}
	}
	opts.Datasets = specs
	f.storage = cfg.Storage
	opts.UnknownWorkspaces = cfg.Consent.Unknown
	opts.Anchors = cfg.Anchors.File
	if f.anchors != "" {
		opts.Anchors = f.anchors
	}
	if f.unknown != "" {
		if f.unknown != "exclude" && f.unknown != "include" {
			return opts, usageErr(`--unknown-workspaces: must be "exclude" or "include" (got %q)`, f.unknown)
		}
		opts.UnknownWorkspaces = f.unknown
	}
	if len(f.inputs) > 0 || f.settings != "" {
		if len(f.inputs) == 0 || f.settings == "" {
			return opts, usageErr("--input and --settings go together: the input checks need the run's input and its settings file")
		}
		opts.Input = cfg.Input
		opts.Input.Paths = f.inputs
		opts.Settings = f.settings
	}
	if f.publicKey != "" {
		key, err := signing.ReadPublicKey(f.publicKey)
		if err != nil {
			return opts, usageErr("--public-key: %v", err)
		}
		opts.PublicKey = key
	}
	return opts, nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("deid verify out --input in" and "deid verify
// --input in out"), and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	var f verifyFlags
	f.register(fs)
	r, names, err := f.verifyArgs(ctx, fs, args, "verify")
	defer names.cleanup()
	if err != nil {
		return err
	}
	if err := r.WriteText(names.writer(stdout)); err != nil {
		return err
	}
	if !r.OK() {
		return errNotVerified
	}
	return nil
}

const verifyHelp = `Checks an output directory and says what it found, one line per check
(✓ holds, ✗ does not, – cannot be proven from what is there), then exits
0 when every check holds and 1 otherwise:
  - every manifest, and the SHA-256, size and rows of every file it lists;
  - the exclusion log's hash chains (a deleted, reordered or edited segment
    is named) and the chain heads the manifests record;
  - that each dataset's manifests form one chain (a window deleted or
    replaced between the first and the newest is named), and that each
    window's accounting record is the one its manifest names by SHA-256;
  - read = contributed + excluded + dead letters per partition, contributed
    = published + withdrawn + suppressed per window, and that the log's
    entries and the dead letters agree with those counts;
  - k on every published row, the rows' generalization values, and that the
    schemas hold only declared columns, none for an identifier or free text;
  - with --input and --settings: that no record of an opted-out, deleted or
    unknown workspace, no message and no minor's record contributed, and
    that no free text of the input occurs in any output (a dead letter's
    kept record, under dead_letters.keep_payload, is noted);
  - that dead letters keep no record's bytes of a message, of an excluded
    workspace or of a record too broken to tell;
  - with --public-key: the signature of every manifest and segment;
  - with --anchors: that every commit the anchor log holds is in the output
    with the hash anchored, which is how deleting the newest windows and
    the exclusion segments after them is caught. Without it, verify says
    that such a truncation cannot be detected.
It ends with the chain heads (each dataset's newest manifest, each
exclusion chain's newest segment): archive them outside the output.
`

// readSpecs returns the dataset declarations of the config at path (the
// embedded defaults when path is empty).
func readSpecs(path string) ([]*pipeline.DatasetSpec, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	return aggregate.Build(aggregate.Config{Datasets: cfg.Datasets}, os.DirFS("."))
}

// verifyArgs parses a command line naming one output directory (flags may
// stand before or after it) and verifies that output.
//
// An s3:// output (or anchor log) is checked in a local copy (localize);
// names turns the copy's paths in the report back into the URLs.
func (f *verifyFlags) verifyArgs(ctx context.Context, fs *flag.FlagSet, args []string, cmd string) (*verify.Report, *localNames, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != 1 {
		return nil, nil, usageErr("name one output directory: deid %s <out> (see deid %s --help)", cmd, cmd)
	}
	opts, err := f.options()
	if err != nil {
		return nil, nil, err
	}
	dir, names, err := f.localize(ctx, pos[0], &opts)
	if err != nil {
		return nil, nil, err
	}
	r, err := verify.Run(ctx, dir, opts)
	return r, names, err
}
