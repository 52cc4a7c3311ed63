package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
)

// flat joins s's words with single spaces, so that wrapped text compares
// with the sentence it came from.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// Every subcommand's --help has its usage line, one sentence on what it
// does, and every flag of its flag set with its meaning and default; deid
// help has the same for every command.
func TestEveryCommandDescribesItsFlags(t *testing.T) {
	var all bytes.Buffer
	if code := runCtx(context.Background(), []string{"help"}, &all, io.Discard); code != 0 {
		t.Fatalf("deid help: exit %d", code)
	}
	names := []string{"run", "gen", "describe", "keygen", "verify", "report", "exclusions", "rollup", "version", "help"}
	if len(names) != len(commands) {
		t.Fatalf("the test lists %d commands, deid has %d", len(names), len(commands))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runCtx(context.Background(), []string{name, "--help"}, &stdout, &stderr); code != 0 {
				t.Fatalf("deid %s --help: exit %d\n%s", name, code, stderr.String())
			}
			help := stdout.String() + stderr.String()
			doc := docOf(name)
			if doc.summary == "" || strings.Count(doc.summary, ". ") > 0 {
				t.Errorf("the summary of %s is not one sentence: %q", name, doc.summary)
			}
			if !strings.HasPrefix(help, "Usage: deid "+doc.usage+"\n\n") {
				t.Errorf("--help does not start with the usage line:\n%s", help)
			}
			fs := helpOf(name, io.Discard)
			if fs == nil {
				t.Fatal("the command has no flag set")
			}
			for _, h := range []struct{ what, text string }{{"--help", help}, {"deid help", all.String()}} {
				text := flat(h.text)
				if !strings.Contains(text, flat(doc.summary)) {
					t.Errorf("%s does not say what %s does", h.what, name)
				}
				fs.VisitAll(func(f *flag.Flag) {
					_, meaning := flag.UnquoteUsage(f)
					if !strings.Contains(text, "--"+f.Name) || !strings.Contains(text, flat(meaning)) {
						t.Errorf("%s does not describe --%s (%q)", h.what, f.Name, meaning)
					}
					if d := flagDefault(f); d != "" && !strings.Contains(text, flat(meaning+" (default "+d+")")) {
						t.Errorf("%s does not give the default of --%s (%s)", h.what, f.Name, d)
					}
				})
			}
		})
	}
}
