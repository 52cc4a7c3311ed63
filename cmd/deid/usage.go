package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// commandDoc is how a subcommand describes itself, in its --help and in
// deid help: a usage line, one sentence on what it does, and (in its own
// --help only) more detail after the flags.
type commandDoc struct {
	name    string
	usage   string // the usage line, after "deid "
	summary string // one sentence: what the command does
	details string // optional, shown by "deid <command> --help"
}

// commands are deid's subcommands, in the order deid help lists them.
var commands = []commandDoc{
	{name: "run", usage: "run [--config FILE] [flags]",
		summary: "Read events (NDJSON files, or Kafka topics with --brokers), drop everything the privacy policy forbids, and write k-anonymous Parquet datasets, manifests, the exclusion log and dead letters under --out.",
		details: runHelp},
	{name: "gen", usage: "gen [--seed N] [--events N] [--out DIR | --brokers B1,B2 --topic TOPIC] [flags]",
		summary: "Write seeded, realistic sample events (one file per partition) and a settings file, with every hazard the pipeline must handle."},
	{name: "verify", usage: "verify <out> [--input PATH]... [--settings FILE] [--public-key FILE] [--anchors FILE] [--config FILE]",
		summary: "Check an output and say what was found, one line per check; exit 1 if any check fails.",
		details: verifyHelp},
	{name: "exclusions", usage: "exclusions <out> --workspace ID [--from TIME] [--to TIME] [--input PATH]... [--settings FILE] [--config FILE]",
		summary: "List every exclusion-log entry of one workspace, and whether any of its records contributed to a published window after it opted out.",
		details: exclusionsHelp},
	{name: "report", usage: "report <out> [--html FILE] [--input PATH]... [--settings FILE] [--public-key FILE] [--anchors FILE] [--config FILE]",
		summary: "Write one self-contained HTML page of an output's figures, charts and verify result.",
		details: reportHelp},
	{name: "describe", usage: "describe [--config FILE]",
		summary: "Print the data dictionary of the datasets as Markdown (docs/datasets.md is its output for the defaults)."},
	{name: "rollup", usage: "rollup <out> --dataset NAME [--levels DIM=L,...] [--config FILE]",
		summary: "Roll one dataset's rows of mixed levels up to one granularity, as CSV.",
		details: rollupHelp},
	{name: "keygen", usage: "keygen --out DIR [--force]",
		summary: "Write an ed25519 key pair for signing manifests and exclusion-log segments."},
	{name: "version", usage: "version",
		summary: "Print deid's version."},
	{name: "help", usage: "help [command]",
		summary: "Print this help, or one command's in full (as \"deid <command> --help\" does)."},
}

const runHelp = `With no config, run uses the embedded defaults: file mode, input sample/,
settings sample/settings.ndjson, output out/. Flags override the config.
--state-dir keeps checkpoints, so that a restart resumes where the run
stopped. Kafka mode runs until SIGTERM/SIGINT (or the topics' ends with
--stop-at-end); on either signal a run stops reading, checkpoints and
exits 0. --check validates the configuration and exits.
`

const helpHeader = `deid — privacy-safe training data from the platform's event streams

Usage: deid <command> [flags]

Commands:
`

const helpFooter = `
Exit status: 0 on success, 1 when the run failed, 2 on bad usage or configuration.
`

// docOf returns the doc of command name.
func docOf(name string) commandDoc {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return commandDoc{name: name, usage: name}
}

// newFlagSet returns the flag set of subcommand name: errors go to stderr,
// and --help prints the command's help (writeHelp) and returns
// flag.ErrHelp, which exits 0.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if h, ok := fs.Output().(*helpRequest); ok {
			h.fs = fs
			writeBrief(h.w, docOf(name), fs)
			return
		}
		writeHelp(fs.Output(), docOf(name), fs)
	}
	return fs
}

// helpRequest is the output deid help gives a command it asks for its
// --help: the command's flag set then writes its brief help to w, and
// leaves itself in fs.
type helpRequest struct {
	w  io.Writer
	fs *flag.FlagSet
}

func (h *helpRequest) Write(p []byte) (int, error) { return h.w.Write(p) }

// writeHelp writes a command's full help: the usage line, what it does,
// its flags, then the details.
func writeHelp(w io.Writer, doc commandDoc, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: deid %s\n\n%s\n", doc.usage, wrap(doc.summary, "", 76))
	if hasFlags(fs) {
		fmt.Fprintf(w, "\nFlags:\n")
		writeFlags(w, fs, "  ")
	}
	if doc.details != "" {
		fmt.Fprintf(w, "\n%s", doc.details)
	}
}

// writeBrief writes a command's entry in deid help: the same as its
// --help without the details.
func writeBrief(w io.Writer, doc commandDoc, fs *flag.FlagSet) {
	fmt.Fprintf(w, "\n  deid %s\n%s\n", doc.usage, wrap(doc.summary, "      ", 76))
	if hasFlags(fs) {
		writeFlags(w, fs, "      ")
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// writeFlags writes every flag of fs, sorted by name: "--name VALUE", then
// its meaning and default on the lines below.
func writeFlags(w io.Writer, fs *flag.FlagSet, indent string) {
	fs.VisitAll(func(f *flag.Flag) {
		value, meaning := flagValue(f)
		head := "--" + f.Name
		if value != "" {
			head += " " + value
		}
		if d := flagDefault(f); d != "" {
			meaning += " (default " + d + ")"
		}
		fmt.Fprintf(w, "%s%s\n%s\n", indent, head, wrap(meaning, indent+"    ", 76))
	})
}

// valueNames name the values of flags whose type says too little.
var valueNames = map[string]string{
	"config": "FILE", "settings": "FILE", "public-key": "FILE", "html": "FILE",
	"cpuprofile": "FILE", "memprofile": "FILE", "input": "PATH", "out": "DIR",
	"state-dir": "DIR", "brokers": "B1,B2", "topics": "T1,T2", "topic": "TOPIC",
	"settings-topic": "TOPIC", "group": "GROUP", "http-addr": "ADDR", "log-level": "LEVEL",
	"workspace": "ID", "from": "TIME", "to": "TIME", "start": "DATE", "title": "TEXT",
	"unknown-workspaces": "POLICY",
}

// flagValue returns the name of f's value (empty for a boolean flag) and
// its meaning.
func flagValue(f *flag.Flag) (value, meaning string) {
	name, meaning := flag.UnquoteUsage(f)
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "", meaning
	}
	if strings.Contains(f.Usage, "`") {
		return name, meaning
	}
	if v, ok := valueNames[f.Name]; ok {
		return v, meaning
	}
	switch name {
	case "int", "uint", "int64", "uint64":
		return "N", meaning
	case "duration":
		return "DURATION", meaning
	case "float":
		return "X", meaning
	}
	return "VALUE", meaning
}

// flagDefault renders f's default, or "" when it is the zero value (the
// meaning then says what happens without the flag).
func flagDefault(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "false", "[]":
		return ""
	}
	return f.DefValue
}

// wrap breaks s into lines of at most width characters, each prefixed
// with indent.
func wrap(s, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// helpOf returns command name's flag set, asking the command for its
// --help into w (brief form); nil when the command has no flag set.
func helpOf(name string, w io.Writer) *flag.FlagSet {
	h := &helpRequest{w: w}
	c, ok := commandFuncs(context.Background())[name]
	if !ok {
		return nil
	}
	if err := c([]string{"--help"}, io.Discard, h); err != nil && !errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return h.fs
}

// cmdHelp prints deid's help (every command with its flags), or one
// command's full help.
func cmdHelp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("help", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		fmt.Fprint(stdout, helpHeader)
		for _, c := range commands {
			if helpOf(c.name, stdout) == nil {
				return fmt.Errorf("no help for %s", c.name)
			}
		}
		fmt.Fprint(stdout, helpFooter)
		return nil
	case 1:
		c, ok := commandFuncs(context.Background())[fs.Arg(0)]
		if !ok {
			return usageErr("unknown command %q; deid help lists them", fs.Arg(0))
		}
		return c([]string{"--help"}, io.Discard, stdout)
	}
	return usageErr("usage: deid help [command]")
}

// cmdVersion prints deid's version.
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("usage: deid version")
	}
	fmt.Fprintf(stdout, "deid %s\n", version)
	return nil
}
