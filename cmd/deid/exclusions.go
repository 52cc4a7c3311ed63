package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mya/deid/internal/verify"
	"github.com/mya/deid/pipeline"
)

// cmdExclusions answers a compliance question about one workspace: every
// exclusion entry of it, and whether any of its records contributed to a
// published window after it opted out.
func cmdExclusions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("exclusions", stderr)
	var (
		f         verifyFlags
		workspace = fs.String("workspace", "", "the workspace id (required)")
		from      = fs.String("from", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
		to        = fs.String("to", "", "only events before this time (RFC 3339 or YYYY-MM-DD)")
	)
	f.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *workspace == "" {
		return usageErr("usage: deid exclusions <out> --workspace ID (see deid exclusions --help)")
	}
	q := verify.WorkspaceQuery{Workspace: *workspace}
	if q.From, err = parseTime(*from); err != nil {
		return usageErr("--from: %v", err)
	}
	if q.To, err = parseTime(*to); err != nil {
		return usageErr("--to: %v", err)
	}
	if f.settings == "" && len(f.inputs) > 0 {
		return usageErr("--input needs --settings: the opt-out time comes from the settings")
	}
	opts, err := f.optionsAllowingSettingsOnly()
	if err != nil {
		return err
	}
	q.Datasets = opts.Datasets
	dir, names, err := f.localize(ctx, pos[0], &opts)
	defer names.cleanup()
	if err != nil {
		return err
	}
	out, err := verify.Load(dir)
	if err != nil {
		return err
	}
	stdout = names.writer(stdout)
	switch {
	case opts.HasInput():
		if q.Input, err = verify.ReadInput(opts.Input, opts.Settings, opts.UnknownWorkspaces); err != nil {
			return err
		}
	case f.settings != "":
		if q.Input, err = verify.ReadSettings(f.settings, opts.UnknownWorkspaces); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	writeWorkspaceReport(stdout, pos[0], verify.QueryWorkspace(out, q))
	return nil
}

const exclusionsHelp = `Lists every exclusion-log entry of one workspace — record-level exclusions
with their reason, event time, decision time and source position, and
publish-time withdrawals of its contributions — and answers plainly whether
any of its records contributed to a published window after it opted out.

With --input and --settings (the run's), every record of the workspace is
checked: each one dated after the opt-out must have an exclusion entry or a
dead letter. With --settings alone, the opt-out time is known but a record
that was not excluded cannot be seen; with neither, the answer says what
the log can and cannot prove.
`

// optionsAllowingSettingsOnly is options, but --settings may come without
// --input.
func (f *verifyFlags) optionsAllowingSettingsOnly() (verify.Options, error) {
	settings := f.settings
	if len(f.inputs) == 0 {
		f.settings = ""
		defer func() { f.settings = settings }()
	}
	return f.options()
}

// parseTime reads an RFC 3339 time or a date (midnight UTC); "" is zero.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date (2026-11-01)", s)
	}
	return t, nil
}

func writeWorkspaceReport(w io.Writer, out string, r *verify.WorkspaceReport) {
	fmt.Fprintf(w, "Workspace %s in %s", r.Workspace, out)
	if !r.From.IsZero() || !r.To.IsZero() {
		fmt.Fprintf(w, ", events %s to %s", orOpen(r.From), orOpen(r.To))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "\nConsent (settings)")
	switch {
	case !r.KnownSettings:
		fmt.Fprintln(w, "  not given: pass the run's --settings to know when the workspace opted out")
	case r.Consent == nil:
		fmt.Fprintln(w, "  no settings record: the workspace never said whether it consents")
	default:
		for _, h := range r.Consent.History {
			fmt.Fprintf(w, "  line %-6d %s  by %-8s %s\n", h.Line, timeOrDash(h.UpdatedAt), orDash(h.Role), h.Effect)
		}
	}

	fmt.Fprintf(w, "\nRecord-level exclusions: %d", len(r.Records))
	byReason := map[string]int64{}
	for _, e := range r.Records {
		byReason[e.Reason.String()]++
	}
	if len(r.Records) > 0 {
		fmt.Fprintf(w, " (%s)\n", reasonsText(byReason))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  event time\tdecided at\treason\tevent type\tevent id\tsource position")
		for _, e := range r.Records {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", microText(e.OccurredAt), microText(e.DecidedAt), e.Reason, orDash(e.EventType), orDash(e.EventID), e.Pos)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\nPublish-time withdrawals: %d\n", len(r.Withdrawals))
	if len(r.Withdrawals) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  window\tdataset\tcell\tevents\treason\tdecided at")
		for _, e := range r.Withdrawals {
			c := e.Cell
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", microText(c.Window.Start), c.Dataset, strings.Join(c.Dims, "/"), c.Events, e.Reason, microText(e.DecidedAt))
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nDid any of its records contribute to a published window after its opt-out?")
	fmt.Fprintf(w, "  %s\n", r.Answer)
	for _, c := range r.Contributed {
		state := "reached a published window"
		if c.Withdrawn {
			state = "withdrawn at publication"
		}
		fmt.Fprintf(w, "    %s  event %s (%s) at %s → %s window %s: %s\n", c.Pos, c.EventID, c.EventType,
			c.OccurredAt.Format(time.RFC3339), orDash(c.Dataset), c.Window.Format("2006-01-02"), state)
	}
	for _, e := range r.Evidence {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if !r.LogIntact {
		fmt.Fprintln(w, "\nThe exclusion log does not verify:")
		for _, p := range r.LogProblems {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(p, "\n", "\n  "))
		}
	}
}

func reasonsText(m map[string]int64) string {
	var parts []string
	for r := pipeline.ReasonLateEvent; r.String() != "unknown"; r++ {
		if n := m[r.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	return strings.Join(parts, ", ")
}

func microText(us int64) string {
	if us == 0 {
		return "-"
	}
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05Z")
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-                   "
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orOpen(t time.Time) string {
	if t.IsZero() {
		return "…"
	}
	return t.UTC().Format(time.RFC3339)
}
