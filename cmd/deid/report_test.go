package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/report"
)

func deadLetters(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// chromium returns the headless browser the report test renders with:
// $DEID_CHROMIUM, else chromium or chromium-browser on PATH. Without one
// the test skips, unless DEID_REQUIRE_CHROMIUM is set (make test sets it
// after installing Debian's chromium), so CI never skips silently.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DEID_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DEID_REQUIRE_CHROMIUM") != "" {
		t.Fatal("DEID_REQUIRE_CHROMIUM is set but no chromium was found: apt-get install -y chromium, or set DEID_CHROMIUM")
	}
	t.Skip("no chromium on PATH and DEID_CHROMIUM unset (set DEID_REQUIRE_CHROMIUM=1 to make this a failure)")
	return ""
}

// TestReportRendersInChromium writes the HTML report of the sample and
// loads it in headless Chromium: the DOM after loading must hold the
// headings and the numbers of the run, and the screenshot is kept in the
// test's directory (and copied to $DEID_TEST_ARTIFACTS when set).
func TestReportRendersInChromium(t *testing.T) {
	browser := chromium(t)
	s := generatedSample(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	out := deid(t, "report", s.out, "--html", page, "--input", s.in, "--settings", filepath.Join(s.in, gen.SettingsFileName))
	if !strings.Contains(out, "VERIFIED: all") {
		t.Fatalf("deid report: %s", out)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// Self-contained: nothing is fetched from anywhere.
	for _, re := range []string{`(?i)<script`, `(?i)<link\b`, `(?i)\bsrc\s*=`, `(?i)https?://`, `(?i)@import`, `(?i)url\(`} {
		if loc := regexp.MustCompile(re).FindIndex(html); loc != nil {
			t.Errorf("the page is not self-contained: %q at byte %d", html[loc[0]:loc[1]], loc[0])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,4400"}
	shot := filepath.Join(dir, "report.png")
	cmd := exec.CommandContext(ctx, browser, append(args, "--screenshot="+shot, "file://"+page)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, b)
	}
	var dom, stderr bytes.Buffer
	cmd = exec.CommandContext(ctx, browser, append(args, "--dump-dom", "file://"+page)...)
	cmd.Stdout, cmd.Stderr = &dom, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	text := dom.String()
	for _, want := range []string{
		"<h1>deid output report</h1>", "✓ VERIFIED", "Records by window", "Exclusions by reason, per window",
		"Dataset campaign_metrics", "Dataset usage_patterns", "Share of events published at each generalization level",
		"Accounting per input partition", "Verification", "Manifests and data files", "Exclusion log",
		report.FormatCount(s.stats.Events),                                   // records read
		report.FormatCount(s.stats.Expected.Contributed["campaign_metrics"]), // contributed events
		report.FormatCount(s.stats.Expected.Excluded["opted_out"]),           // opted-out records
		report.FormatCount(deadLetters(s.stats.Expected.DeadLetters)),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the loaded page lacks %q", want)
		}
	}
	if n := strings.Count(text, "<svg"); n < 3 {
		t.Errorf("the loaded page has %d charts, want one for exclusions and one per dataset", n)
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() < 2000 {
		t.Errorf("screenshot is %v", b)
	}
	t.Logf("screenshot: %s", shot)
	if dst := os.Getenv("DEID_TEST_ARTIFACTS"); dst != "" {
		must(t, os.MkdirAll(dst, 0o755))
		for _, f := range []string{shot, page} {
			b, err := os.ReadFile(f)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			must(t, os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644))
		}
		t.Logf("copied the screenshot and the page to %s", dst)
	}
}
