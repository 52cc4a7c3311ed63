package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mya/deid/pipeline"
)

// WorkspaceQuery asks what the output says about one workspace.
type WorkspaceQuery struct {
	Workspace string
	// From and To bound event times (and windows), inclusive and
	// exclusive; zero means unbounded.
	From, To time.Time
	// Input, when set, is the run's input (with its settings), read by
	// ReadInput; Settings alone may be set through Input with no
	// partitions.
	Input *Input
	// Datasets map event types to datasets; nil means deid's defaults.
	Datasets []*pipeline.DatasetSpec
}

// WorkspaceReport is the answer to a WorkspaceQuery.
type WorkspaceReport struct {
	Workspace string
	From, To  time.Time
	// LogIntact tells whether every chain verified; LogProblems says what
	// is wrong otherwise.
	LogIntact   bool
	LogProblems []string
	// Records are the record-level entries of the workspace, by event
	// time; Withdrawals its publish-time entries, by window.
	Records, Withdrawals []pipeline.Exclusion
	// Consent is the workspace's settings history, nil without settings
	// or without a record for it.
	Consent *Workspace
	// KnownSettings tells whether settings were given.
	KnownSettings bool
	// HasInput tells whether the input was given; the fields below are
	// set only then.
	HasInput bool
	// InputRecords are the workspace's records in the input (in range).
	InputRecords int
	// After counts its records dated at or after the opt-out or deletion;
	// AfterExcluded and AfterDead those excluded and dead-lettered.
	After, AfterExcluded, AfterDead int
	// Contributed lists the records dated after the opt-out that have
	// neither an exclusion entry nor a dead letter.
	Contributed []Contribution
	// Before counts its records dated before the opt-out, and how many of
	// them contributed.
	Before, BeforeContributed int
	// Answer is the plain answer: did any record contribute after the
	// opt-out?
	Answer string
	// Evidence says what the answer rests on, and what it cannot prove.
	Evidence []string
}

// Contribution is a record of the workspace that contributed.
type Contribution struct {
	Pos        string
	EventID    string
	EventType  string
	OccurredAt time.Time
	Dataset    string
	Window     time.Time
	// Withdrawn tells whether a publish-time withdrawal of the workspace
	// covers the window, so it never reached a published row.
	Withdrawn bool
}

// QueryWorkspace answers q from the output o.
func QueryWorkspace(o *Output, q WorkspaceQuery) *WorkspaceReport {
	r := &WorkspaceReport{Workspace: q.Workspace, From: q.From, To: q.To, LogIntact: true}
	inRange := func(us int64) bool {
		if us == 0 {
			return q.From.IsZero() && q.To.IsZero()
		}
		t := time.UnixMicro(us)
		return (q.From.IsZero() || !t.Before(q.From)) && (q.To.IsZero() || t.Before(q.To))
	}
	windowInRange := func(w pipeline.Window) bool {
		return (q.From.IsZero() || w.End > q.From.UnixMicro()) && (q.To.IsZero() || w.Start < q.To.UnixMicro())
	}
	for _, c := range o.Chains {
		if c.Err != nil {
			r.LogIntact = false
			r.LogProblems = append(r.LogProblems, c.Err.Error())
		}
		c.Entries(func(_ *Segment, e *pipeline.Exclusion) {
			if e.WorkspaceID != q.Workspace {
				return
			}
			switch {
			case e.Cell != nil && windowInRange(e.Cell.Window):
				r.Withdrawals = append(r.Withdrawals, *e)
			case e.Cell == nil && inRange(e.OccurredAt):
				r.Records = append(r.Records, *e)
			}
		})
	}
	slices.SortStableFunc(r.Records, func(a, b pipeline.Exclusion) int {
		if a.OccurredAt != b.OccurredAt {
			return cmp.Compare(a.OccurredAt, b.OccurredAt)
		}
		return strings.Compare(a.Pos.String(), b.Pos.String())
	})
	slices.SortStableFunc(r.Withdrawals, func(a, b pipeline.Exclusion) int { return cmp.Compare(a.Cell.Window.Start, b.Cell.Window.Start) })

	in := q.Input
	if in != nil {
		r.KnownSettings = true
		r.Consent = in.Workspaces[q.Workspace]
	}
	since := time.Time{}
	stopped := false // opted out, deleted or unreadable now
	if r.Consent != nil && (r.Consent.OptedOut || r.Consent.Deleted || r.Consent.Unreadable) {
		since, stopped = r.Consent.Since, true
	}
	if in == nil || len(in.Partitions) == 0 {
		r.logOnly(stopped, since)
		return r
	}
	r.HasInput = true
	r.fromInput(o, q, in, inRange, stopped, since)
	return r
}

// logOnly answers from the log alone, saying what it cannot prove.
func (r *WorkspaceReport) logOnly(stopped bool, since time.Time) {
	r.Answer = "Cannot be proven from the log alone."
	r.Evidence = []string{
		fmt.Sprintf("The log lists %d excluded records and %d publish-time withdrawals of this workspace; each listed record was kept out of every dataset.",
			len(r.Records), len(r.Withdrawals)),
		"What the log cannot show is a record that was not excluded: contributed records are counted per partition, not listed, and the datasets hold no workspace id by design. Pass the run's --input and --settings to check every record of the workspace.",
	}
	if stopped {
		after := 0
		for _, e := range r.Records {
			if since.IsZero() || !time.UnixMicro(e.OccurredAt).Before(since) {
				after++
			}
		}
		r.Evidence = append(r.Evidence, fmt.Sprintf("By the settings it is %s since %s; %d of the logged exclusions are of records dated after that.",
			stateWord(r.Consent), timeText(since), after))
	}
	if r.KnownSettings && !stopped {
		r.Evidence = append(r.Evidence, "By the settings it has not opted out and is not deleted.")
	}
	if !r.LogIntact {
		r.Evidence = append(r.Evidence, "The log does not verify (see below), so even the listed exclusions cannot be relied on.")
	}
}

// fromInput answers line by line from the input.
func (r *WorkspaceReport) fromInput(o *Output, q WorkspaceQuery, in *Input, inRange func(int64) bool, stopped bool, since time.Time) {
	excluded := map[string]bool{}
	for _, c := range o.Chains {
		c.Entries(func(_ *Segment, e *pipeline.Exclusion) {
			if e.Cell == nil {
				excluded[e.Pos.String()] = true
			}
		})
	}
	dead := map[string]bool{}
	for _, ls := range o.DeadLetters {
		for _, l := range ls {
			dead[pipeline.Position{Source: l.Source, Partition: l.Partition, Offset: l.Offset}.String()] = true
		}
	}
	datasetOf := map[string]string{}
	for _, s := range q.Datasets {
		for _, k := range s.Kinds {
			datasetOf[k.String()] = s.Name
		}
	}
	withdrawn := withdrawnLines(o, in, func(part string, line int) bool {
		pos := fmt.Sprintf("%s@%d", part, line)
		return !excluded[pos] && !dead[pos]
	})
	size := o.WindowSize().Microseconds()
	for _, p := range in.Partitions {
		for i := range p.Lines {
			l := &p.Lines[i]
			if !l.Valid || l.WorkspaceID != q.Workspace || !inRange(l.OccurredAt) {
				continue
			}
			r.InputRecords++
			pos := fmt.Sprintf("%s@%d", p.Name, i+1)
			contributed := !excluded[pos] && !dead[pos]
			after := stopped && (since.IsZero() || l.OccurredAt == 0 || !time.UnixMicro(l.OccurredAt).Before(since))
			if !after {
				r.Before++
				if contributed {
					r.BeforeContributed++
				}
				continue
			}
			r.After++
			switch {
			case excluded[pos]:
				r.AfterExcluded++
			case dead[pos]:
				r.AfterDead++
			default:
				c := Contribution{Pos: pos, EventID: l.EventID, EventType: l.EventType, OccurredAt: time.UnixMicro(l.OccurredAt).UTC(),
					Dataset: datasetOf[l.EventType]}
				if size > 0 {
					start := l.OccurredAt - ((l.OccurredAt%size)+size)%size
					c.Window = time.UnixMicro(start).UTC()
				}
				c.Withdrawn = withdrawn[pos]
				r.Contributed = append(r.Contributed, c)
			}
		}
	}
	switch {
	case !r.KnownSettings:
	case r.Consent == nil && in.UnknownExcluded:
		r.Answer = fmt.Sprintf("No settings record: the workspace never consented, so none of its %d records may contribute; %d did.",
			r.InputRecords, r.BeforeContributed)
		if r.BeforeContributed == 0 {
			r.Answer = fmt.Sprintf("No. The workspace has no settings record, so it never consented (fail closed), and none of its %d records contributed.", r.InputRecords)
		}
		return
	case !stopped:
		r.Answer = fmt.Sprintf("It has not opted out: by the settings it is included, so its records may contribute (%d records, %d contributed).",
			r.InputRecords, r.BeforeContributed)
		return
	}
	published := 0
	for _, c := range r.Contributed {
		if !c.Withdrawn {
			published++
		}
	}
	what := fmt.Sprintf("%s since %s", stateWord(r.Consent), timeText(since))
	if r.Consent != nil && r.Consent.Unreadable && !r.Consent.Deleted {
		what = fmt.Sprintf("excluded since its unreadable settings record (line %d)", r.Consent.UnreadableLine)
	}
	switch {
	case r.After == 0:
		r.Answer = fmt.Sprintf("No. It is %s, and the input holds no record of it dated after that.", what)
	case len(r.Contributed) == 0:
		r.Answer = fmt.Sprintf("No. It is %s; all %d of its records dated after that were excluded (%d) or dead-lettered (%d), so none contributed to any window.",
			what, r.After, r.AfterExcluded, r.AfterDead)
	case published == 0:
		r.Answer = fmt.Sprintf("No published window: %d of its records dated after it was %s contributed at ingest, but every one was withdrawn at publication.",
			len(r.Contributed), what)
	default:
		r.Answer = fmt.Sprintf("YES: %d of its records dated after it was %s contributed to published windows (listed below).", published, what)
	}
	r.Evidence = append(r.Evidence,
		"Every input line has exactly one disposition (deid verify checks this), so a record with an exclusion entry or a dead letter contributed to nothing.")
	if r.Before > 0 {
		r.Evidence = append(r.Evidence, fmt.Sprintf("Before that it had %d records, of which %d contributed: consent applies to records processed after it changed, and published windows are never re-published (contract §4).",
			r.Before, r.BeforeContributed))
	}
	if !r.LogIntact {
		r.Evidence = append(r.Evidence, "The log does not verify (see below): the answer rests on a damaged log.")
	}
}

func stateWord(w *Workspace) string {
	switch {
	case w != nil && w.Deleted:
		return "deleted"
	case w != nil && w.Unreadable:
		return "excluded for an unreadable settings record"
	}
	return "opted out"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "its first settings record (no readable updated_at)"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
