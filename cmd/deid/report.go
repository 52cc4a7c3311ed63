package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mya/deid/internal/report"
	"github.com/mya/deid/internal/verify"
)

// cmdReport verifies an output and writes the HTML page of its figures and
// of the verify result. The page is written whatever the verdict (it shows
// it); the exit status is 0 when the page was written.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var f verifyFlags
	f.register(fs)
	htmlPath := fs.String("html", "report.html", "the HTML file to write")
	title := fs.String("title", "", `the page's title (default "deid output report")`)
	r, names, err := f.verifyArgs(ctx, fs, args, "report")
	defer names.cleanup()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := report.Write(names.writer(&b), r, report.Meta{Title: *title, Generated: time.Now()}); err != nil {
		return err
	}
	if err := writeFileAtomic(*htmlPath, b.Bytes()); err != nil {
		return err
	}
	stdout = names.writer(stdout)
	fmt.Fprintf(stdout, "wrote %s (%d KiB): %s\n", *htmlPath, (b.Len()+1023)/1024, r.Verdict())
	for _, u := range r.Summary.Utility {
		fmt.Fprintln(stdout, u.Text())
	}
	if hs := r.Summary.Heads; len(hs) > 0 {
		fmt.Fprintf(stdout, "chain heads (archive these outside the output):\n%s", verify.HeadsText(hs))
	}
	return nil
}

const reportHelp = `Verifies the output (as deid verify does, with the same flags) and writes
one self-contained HTML page: per window and dataset the records read,
contributed, excluded by reason and dead-lettered; rows published per
generalization level; cells and events suppressed; charts of exclusions by
reason and of the share of events published at each level; the accounting
per partition; and every check of the verification. No scripts, fonts or
images are loaded from anywhere: the file opens as it is, offline.
`

// writeFileAtomic writes b to path through a temporary file in the same
// directory, so a reader never sees half a page.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
