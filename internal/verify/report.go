package verify

import (
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status uint8

const (
	// Pass: the property holds.
	Pass Status = iota + 1
	// Fail: the property does not hold; Problems name each violation.
	Fail
	// Note: nothing is wrong, but something cannot be proven from what is
	// there, or was not asked for; Found says what.
	Note
)

// Mark returns the status's mark in the text report: ✓, ✗ or –.
func (s Status) Mark() string {
	switch s {
	case Pass:
		return "✓"
	case Fail:
		return "✗"
	}
	return "–"
}

// String names the status.
func (s Status) String() string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	}
	return "note"
}

// Check is one verified property.
type Check struct {
	// Section groups checks in the report ("Exclusion log", …).
	Section string
	Status  Status
	// Found says in one line what was found: the figures on success, the
	// gist of the failure otherwise.
	Found string
	// Problems names every violation of a failed check, one per line.
	Problems []string
}

// Sections in report order.
const (
	SectionFiles      = "Manifests and data files"
	SectionChain      = "Exclusion log"
	SectionAccounting = "Accounting (contract §8)"
	SectionRows       = "Published rows (contract §6.3, §7)"
	SectionInput      = "Input (contract §3, §4)"
	SectionSignatures = "Signatures"
	SectionAnchors    = "Anchors (contract §8)"
)

var sectionOrder = []string{SectionFiles, SectionChain, SectionAccounting, SectionRows, SectionInput, SectionSignatures, SectionAnchors}

// Report is what Run found.
type Report struct {
	// Out is the output directory verified.
	Out string
	// Checks are in the order they were made.
	Checks []Check
	// Summary holds the figures of the output, for reports.
	Summary Summary
}

// OK tells whether no check failed.
func (r *Report) OK() bool { return r.Failed() == 0 }

// Failed counts the failed checks.
func (r *Report) Failed() int { return r.count(Fail) }

func (r *Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Sections returns the checks grouped by section, in report order.
func (r *Report) Sections() []Section {
	var out []Section
	for _, name := range sectionOrder {
		var cs []Check
		for _, c := range r.Checks {
			if c.Section == name {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			out = append(out, Section{Name: name, Checks: cs})
		}
	}
	return out
}

// Section is a named group of checks.
type Section struct {
	Name   string
	Checks []Check
}

// Verdict is the report's last line: whether the output verified, and the
// count of checks by outcome.
func (r *Report) Verdict() string {
	pass, fail, note := r.count(Pass), r.count(Fail), r.count(Note)
	notes := ""
	if note > 0 {
		notes = fmt.Sprintf(", %d %s", note, plural(note, "note", "notes"))
	}
	if fail == 0 {
		return fmt.Sprintf("VERIFIED: all %d checks passed%s.", pass, notes)
	}
	return fmt.Sprintf("NOT VERIFIED: %d of %d checks failed%s.", fail, pass+fail, notes)
}

// MaxProblemsShown bounds the problems WriteText lists under one check.
const MaxProblemsShown = 20

// WriteText writes the report for a terminal: a heading per section, one
// line per check with its mark and what was found, the problems of a
// failed check indented below it, and the verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "deid verify %s\n", r.Out)
	for _, s := range r.Sections() {
		fmt.Fprintf(&b, "\n%s\n", s.Name)
		for _, c := range s.Checks {
			fmt.Fprintf(&b, "  %s %s\n", c.Status.Mark(), c.Found)
			for i, p := range c.Problems {
				if i == MaxProblemsShown {
					fmt.Fprintf(&b, "      … and %d more\n", len(c.Problems)-i)
					break
				}
				fmt.Fprintf(&b, "      %s\n", strings.ReplaceAll(p, "\n", "\n        "))
			}
		}
	}
	if hs := r.Summary.Heads; len(hs) > 0 {
		fmt.Fprintf(&b, "\nChain heads (archive these outside the output: they prove what it held now)\n%s", HeadsText(hs))
	}
	fmt.Fprintf(&b, "\n%s\n", r.Verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

// add appends a check: Pass when problems is empty, else Fail with found
// as its gist.
func (r *Report) add(section string, problems []string, pass, fail string) {
	if len(problems) == 0 {
		r.Checks = append(r.Checks, Check{Section: section, Status: Pass, Found: pass})
		return
	}
	r.Checks = append(r.Checks, Check{Section: section, Status: Fail, Found: fail, Problems: problems})
}

// note appends a note.
func (r *Report) note(section, found string) {
	r.Checks = append(r.Checks, Check{Section: section, Status: Note, Found: found})
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// many renders a count and its noun: "1 problem", "3 problems"; the
// plural is the noun plus "s" unless given.
func many(n int, noun string, plural ...string) string {
	if n == 1 {
		return "1 " + noun
	}
	if len(plural) > 0 {
		return fmt.Sprintf("%d %s", n, plural[0])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
