package verify

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
)

// disposition is what the output says became of one input line.
type disposition struct {
	excluded *pipeline.Exclusion
	dead     bool
}

// checkInput reads the input and the settings independently and proves
// from them that nothing that had to be excluded contributed, and that no
// free text of the input reached an output.
func (v *verifier) checkInput() error {
	const sec = SectionInput
	if !v.opts.HasInput() {
		v.r.note(sec, "input not given: pass --input and --settings to prove line by line that no opted-out, deleted, unknown-consent, minor or message record contributed, and that no free text of the input reached an output")
		return nil
	}
	in, err := ReadInput(v.opts.Input, v.opts.Settings, v.opts.UnknownWorkspaces)
	if err != nil {
		return err
	}
	v.input = in
	disp, problems := v.dispositions(in)

	// Every line has exactly one disposition, and the log is of this input.
	var lines, excluded, dead, invalid int64
	for _, p := range in.Partitions {
		lines += int64(len(p.Lines))
		c := v.out.Chain(p.Name)
		var final *pipeline.PartitionAccounting
		if c != nil {
			final = c.Final()
		}
		if final == nil {
			problems = append(problems, fmt.Sprintf("input %s: the output has no accounting for it: it was not read, or its log was deleted", p.Name))
			continue
		}
		if final.Read != int64(len(p.Lines)) || final.FirstOffset != 1 || final.LastOffset != int64(len(p.Lines)) {
			problems = append(problems, fmt.Sprintf("input %s: %d lines, but the accounting covers lines %d–%d (%d read)",
				p.Name, len(p.Lines), final.FirstOffset, final.LastOffset, final.Read))
		}
		var ex, dl, contributed int64
		for i, l := range p.Lines {
			d := disp[p.Name][int64(i+1)]
			switch {
			case d.excluded != nil:
				ex++
			case d.dead:
				dl++
			default:
				contributed++
			}
			if !l.Valid {
				invalid++
				if !d.dead {
					problems = append(problems, fmt.Sprintf("%s@%d: not a JSON object, yet not a dead letter", p.Name, i+1))
				}
			}
		}
		excluded += ex
		dead += dl
		if contributed != final.Contributed {
			problems = append(problems, fmt.Sprintf("input %s: %d lines have no exclusion entry and no dead letter, but the accounting says %d contributed",
				p.Name, contributed, final.Contributed))
		}
	}
	for _, c := range v.partitionChains() {
		if in.Partition(c.Name) == nil {
			problems = append(problems, fmt.Sprintf("the output has partition %s, which is not in the input given", c.Name))
		}
	}
	v.r.add(sec, problems,
		fmt.Sprintf("%d input lines in %d files, each with exactly one disposition: %d excluded, %d dead letters (%d not JSON), %d contributed; every exclusion entry names its line and event_id",
			lines, len(in.Partitions), excluded, dead, invalid, lines-excluded-dead),
		fmt.Sprintf("the output does not account for this input line by line: %s", many(len(problems), "problem")))

	v.checkForbidden(in, disp)
	v.checkConsentReasons(in, disp)
	return v.checkContent(in)
}

// dispositions maps every input line to its exclusion entry or dead letter,
// checking that each names a line of the input, once.
func (v *verifier) dispositions(in *Input) (map[string]map[int64]disposition, []string) {
	var problems []string
	disp := map[string]map[int64]disposition{}
	for _, p := range in.Partitions {
		disp[p.Name] = map[int64]disposition{}
	}
	for _, c := range v.partitionChains() {
		p := in.Partition(c.Name)
		if p == nil {
			continue
		}
		c.Entries(func(s *Segment, e *pipeline.Exclusion) {
			if e.Cell != nil {
				return
			}
			pos := e.Pos.String()
			switch {
			case pipeline.PartitionID{Source: e.Pos.Source, Partition: e.Pos.Partition}.String() != c.Name:
				problems = append(problems, fmt.Sprintf("%s: an entry for %s in the chain of %s", baseName(s.Meta.Path), pos, c.Name))
				return
			case e.Pos.Offset < 1 || e.Pos.Offset > int64(len(p.Lines)):
				problems = append(problems, fmt.Sprintf("%s: excluded (%s), but the input has no such line", pos, e.Reason))
				return
			}
			l := p.Lines[e.Pos.Offset-1]
			if l.Valid && l.EventID != e.EventID {
				problems = append(problems, fmt.Sprintf("%s: the log excludes event %q, the input line is event %q: the log is not of this input",
					pos, e.EventID, l.EventID))
			}
			if prev := disp[c.Name][e.Pos.Offset].excluded; prev != nil {
				problems = append(problems, fmt.Sprintf("%s: excluded twice (%s and %s)", pos, prev.Reason, e.Reason))
			}
			disp[c.Name][e.Pos.Offset] = disposition{excluded: e}
		})
	}
	for name, letters := range v.out.DeadLetters {
		p := in.Partition(name)
		if p == nil {
			continue
		}
		for _, l := range letters {
			d := disp[name][l.Offset]
			switch {
			case l.Offset < 1 || l.Offset > int64(len(p.Lines)):
				problems = append(problems, fmt.Sprintf("%s@%d: a dead letter, but the input has no such line", name, l.Offset))
			case d.excluded != nil:
				problems = append(problems, fmt.Sprintf("%s@%d: both excluded (%s) and a dead letter", name, l.Offset, d.excluded.Reason))
			}
			d.dead = true
			disp[name][l.Offset] = d
		}
	}
	return disp, problems
}

// Forbidden kinds of records (contract P3–P6).
var forbiddenKinds = []string{"opted out", "deleted", "unreadable consent", "unknown consent", "message", "minor"}

// consentKinds are the forbidden kinds a publish-time withdrawal excludes:
// consent that changed between ingest and publication.
var consentKinds = map[string]bool{"opted out": true, "deleted": true, "unreadable consent": true}

// consentWithdrawal tells whether a publish-time reason withdraws a
// workspace for its consent.
func consentWithdrawal(r pipeline.Reason) bool {
	switch r {
	case pipeline.ReasonOptedOutBeforePublish, pipeline.ReasonDeletedBeforePublish, pipeline.ReasonConsentUnreadableBeforePublish:
		return true
	}
	return false
}

// withdrawnLines returns the positions ("partition@line") of input lines
// that contributed at ingest and were withdrawn at publication: a
// workspace's contributing lines (contributed tells which lines have no
// exclusion entry and no dead letter) dated in a window from which the
// publish chain withdrew the workspace for consent, when the events
// withdrawn there (over every dataset and cell) cover them all. A window
// that withdrew fewer events than the lines dated in it excuses none of
// them: something else contributed.
func withdrawnLines(o *Output, in *Input, contributed func(part string, line int) bool) map[string]bool {
	type key struct {
		ws string
		w  pipeline.Window
	}
	withdrawn := map[key]int64{}
	byWS := map[string][]pipeline.Window{}
	if c := o.Chain(PublishChain); c != nil {
		c.Entries(func(_ *Segment, e *pipeline.Exclusion) {
			if e.Cell == nil || e.Cell.WorkspaceID == "" || !consentWithdrawal(e.Reason) {
				return
			}
			k := key{e.Cell.WorkspaceID, e.Cell.Window}
			if withdrawn[k] == 0 {
				byWS[k.ws] = append(byWS[k.ws], k.w)
			}
			withdrawn[k] += e.Cell.Events
		})
	}
	if len(withdrawn) == 0 {
		return nil
	}
	lines := map[key][]string{}
	for _, p := range in.Partitions {
		for i := range p.Lines {
			l := &p.Lines[i]
			if !l.Valid || len(byWS[l.WorkspaceID]) == 0 || !contributed(p.Name, i+1) {
				continue
			}
			for _, w := range byWS[l.WorkspaceID] {
				if l.OccurredAt >= w.Start && l.OccurredAt < w.End {
					k := key{l.WorkspaceID, w}
					lines[k] = append(lines[k], fmt.Sprintf("%s@%d", p.Name, i+1))
				}
			}
		}
	}
	out := map[string]bool{}
	for k, ps := range lines {
		if int64(len(ps)) <= withdrawn[k] {
			for _, pos := range ps {
				out[pos] = true
			}
		}
	}
	return out
}

// forbidden returns the kinds a line belongs to that must never contribute.
func (in *Input) forbidden(l *Line) []string {
	if !l.Valid {
		return nil
	}
	var kinds []string
	switch in.ExpectedReason(l.WorkspaceID) {
	case pipeline.ReasonOptedOut:
		kinds = append(kinds, "opted out")
	case pipeline.ReasonWorkspaceDeleted:
		kinds = append(kinds, "deleted")
	case pipeline.ReasonConsentUnreadable:
		kinds = append(kinds, "unreadable consent")
	case pipeline.ReasonConsentUnknown:
		kinds = append(kinds, "unknown consent")
	}
	if l.Message() {
		kinds = append(kinds, "message")
	}
	if l.Minor != "" {
		kinds = append(kinds, "minor")
	}
	return kinds
}

// checkForbidden proves that every record that had to be excluded has an
// exclusion entry or a dead letter: since every record has exactly one
// disposition, none of them contributed. A record whose workspace's
// consent changed after ingest may instead have been withdrawn at
// publication (contract §8): that counts as an exclusion of the workspace.
func (v *verifier) checkForbidden(in *Input, disp map[string]map[int64]disposition) {
	const sec = SectionInput
	type tally struct {
		records, withdrawn int64
		workspaces         map[string]bool
		problems           []string
	}
	withdrawn := withdrawnLines(v.out, in, func(part string, line int) bool {
		d := disp[part][int64(line)]
		return d.excluded == nil && !d.dead
	})
	t := map[string]*tally{}
	for _, k := range forbiddenKinds {
		t[k] = &tally{workspaces: map[string]bool{}}
	}
	for _, p := range in.Partitions {
		for i := range p.Lines {
			l := &p.Lines[i]
			for _, k := range in.forbidden(l) {
				tk := t[k]
				tk.records++
				tk.workspaces[l.WorkspaceID] = true
				d := disp[p.Name][int64(i+1)]
				if d.excluded == nil && !d.dead && consentKinds[k] && withdrawn[fmt.Sprintf("%s@%d", p.Name, i+1)] {
					tk.withdrawn++
					continue
				}
				if d.excluded == nil && !d.dead {
					tk.problems = append(tk.problems, fmt.Sprintf("%s@%d (event %s, workspace %s): neither excluded nor a dead letter: it contributed",
						p.Name, i+1, l.EventID, l.WorkspaceID))
				}
			}
		}
	}
	what := map[string]string{
		"opted out":          "records of the %d workspaces opted out of AI training (P3)",
		"deleted":            "records of the %d deleted workspaces (P6)",
		"unreadable consent": "records of the %d workspaces whose settings record is unreadable (fail closed, P8)",
		"unknown consent":    "records of the %d workspaces without a settings record (fail closed, contract §4)",
		"message":            "message records (P4)",
		"minor":              "records of creators under 13, or 13–17 without guardian consent (P5)",
	}
	for _, k := range forbiddenKinds {
		tk := t[k]
		if k == "unknown consent" && !in.UnknownExcluded {
			v.r.note(sec, "workspaces without a settings record are included (consent.unknown_workspaces: include), so their records may contribute")
			continue
		}
		desc := what[k]
		if strings.Contains(desc, "%d") {
			desc = fmt.Sprintf(desc, len(tk.workspaces))
		}
		if tk.records == 0 {
			v.r.note(sec, fmt.Sprintf("the input has no %s, so none can have contributed", strings.Replace(desc, "the 0 ", "", 1)))
			continue
		}
		pass := fmt.Sprintf("none of the %d %s contributed: each has an exclusion entry or a dead letter", tk.records, desc)
		if tk.withdrawn > 0 {
			pass = fmt.Sprintf("none of the %d %s contributed: each has an exclusion entry or a dead letter, or (%d) was withdrawn at publication", tk.records, desc, tk.withdrawn)
		}
		v.r.add(sec, tk.problems, pass,
			fmt.Sprintf("%d of the %d %s contributed", len(tk.problems), tk.records, desc))
	}
}

// checkConsentReasons checks the other direction: every record excluded
// for a consent reason belongs to a workspace the settings give that
// reason, so the log's consent decisions are those of the settings.
func (v *verifier) checkConsentReasons(in *Input, disp map[string]map[int64]disposition) {
	const sec = SectionInput
	var problems []string
	n := 0
	for _, p := range in.Partitions {
		for i := range p.Lines {
			d := disp[p.Name][int64(i+1)]
			if d.excluded == nil {
				continue
			}
			switch r := d.excluded.Reason; r {
			case pipeline.ReasonOptedOut, pipeline.ReasonWorkspaceDeleted, pipeline.ReasonConsentUnreadable, pipeline.ReasonConsentUnknown:
				n++
				if want := in.ExpectedReason(d.excluded.WorkspaceID); want != r {
					w := want.String()
					if want == pipeline.ReasonNone {
						w = "included"
					}
					problems = append(problems, fmt.Sprintf("%s@%d: excluded as %s, but by the settings workspace %s is %s",
						p.Name, i+1, r, d.excluded.WorkspaceID, w))
				}
			}
		}
	}
	v.checkUnattributable(in)
	v.r.add(sec, problems,
		fmt.Sprintf("the %d consent exclusions agree with the settings (%d lines, %d unreadable, %d workspaces)",
			n, in.SettingsLines, in.SettingsSkipped, len(in.Workspaces)),
		fmt.Sprintf("%s with the settings", many(len(problems), "consent exclusion disagrees", "consent exclusions disagree")))
}

// checkContent searches every output file for the input's free text,
// decoding Parquet so that compression hides nothing. The dead-letter files
// are searched as they are (the bytes a dead letter keeps are base64:
// checkDeadLetters decodes and reports them).
func (v *verifier) checkContent(in *Input) error {
	const sec = SectionInput
	ix := in.content
	var problems []string
	files, values := 0, 0
	report := func(where, s string) {
		o := ix.planted[s]
		problems = append(problems, fmt.Sprintf("%s holds %q (%d bytes) from %s %s", where, redact(s), len(s), o.pos, o.field))
	}
	err := filepath.WalkDir(v.out.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		files++
		rel := v.out.rel(path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if s, ok := ix.find(string(b)); ok {
			report(rel, s)
		}
		if !strings.HasSuffix(path, ".parquet") {
			return nil
		}
		meta, err := parquet.ReadMetadata(path)
		if err == nil {
			for k, val := range meta {
				if s, ok := ix.find(val); ok {
					report(rel+" metadata "+k, s)
				}
			}
		}
		rows, err := parquet.ReadRows(path)
		if err != nil {
			return nil // unreadable: reported by the file or chain checks
		}
		for i, r := range rows {
			for col, val := range r {
				if str, ok := val.(string); ok {
					values++
					if s, ok := ix.find(str); ok {
						report(fmt.Sprintf("%s row %d column %s", rel, i+1, col), s)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(problems)
	v.r.add(sec, problems,
		fmt.Sprintf("no free text of the input in any output file: %d strings from %d lines (message bodies, captions, comments, other fields outside the allowlist) searched for in %d files and %d decoded Parquet values",
			ix.Len(), len(ix.lines), files, values),
		fmt.Sprintf("free text of the input reached an output: %s", many(len(problems), "finding")))
	return nil
}

// joinInts renders the first few numbers of ns, comma-separated.
func joinInts(ns []int) string {
	var parts []string
	for i, n := range ns {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… %d more", len(ns)-i))
			break
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return strings.Join(parts, ", ")
}

// checkUnattributable compares the settings records that name no workspace
// with the exclusion log's settings chain: a run stops on such a record
// unless consent.unattributable is skip, and then logs each one there, so
// each must be logged, and nothing else.
func (v *verifier) checkUnattributable(in *Input) {
	const sec = SectionInput
	logged := map[int64]bool{}
	if c := v.out.Chain(SettingsChain); c != nil {
		c.Entries(func(_ *Segment, e *pipeline.Exclusion) {
			if e.Reason == pipeline.ReasonConsentUnattributable {
				logged[e.Pos.Offset] = true
			}
		})
	}
	if len(in.Unattributable) == 0 && len(logged) == 0 {
		return
	}
	var problems []string
	want := map[int64]bool{}
	for _, n := range in.Unattributable {
		want[int64(n)] = true
		if !logged[int64(n)] {
			problems = append(problems, fmt.Sprintf("settings line %d is unreadable and names no workspace, but the settings chain does not log it as skipped: the run cannot have read these settings", n))
		}
	}
	for n := range logged {
		if !want[n] {
			problems = append(problems, fmt.Sprintf("the settings chain logs settings line %d as unattributable, but that line names a workspace or is readable: the log is not of these settings", n))
		}
	}
	slices.Sort(problems)
	v.r.add(sec, problems,
		fmt.Sprintf("the %s unreadable and naming no workspace (lines %s) %s logged as skipped in the settings chain (consent.unattributable: skip)",
			many(len(in.Unattributable), "settings record", "settings records"), joinInts(in.Unattributable), map[bool]string{true: "is", false: "are"}[len(in.Unattributable) == 1]),
		fmt.Sprintf("the settings chain and the settings disagree on unattributable records: %s", many(len(problems), "problem")))
}
