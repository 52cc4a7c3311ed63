package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/deadletter"
)

// MinContentLen is the shortest free-text string the content search looks
// for: shorter ones ("post", "+1-555-0100") could occur in an output by
// chance, and every string worth leaking is longer.
const MinContentLen = 12

// contentIndex holds the free text of the input — string values of fields
// outside the allowlist (message bodies, captions, comments, e-mail
// addresses, …) and their words — and finds any of them in a text.
type contentIndex struct {
	// planted maps each content string to where it was first seen.
	planted map[string]origin
	// legitimate values: envelope and allowlisted values, which deid keeps
	// by design (ids in the exclusion log, dimension values in rows).
	legitimate map[string]bool
	// byPrefix indexes the planted strings by their first MinContentLen
	// bytes, so a text is searched in one pass.
	byPrefix map[string][]string
	// Lines counts the input lines that carried content.
	lines map[string]bool
}

// origin is where a content string was found in the input.
type origin struct {
	pos, field string
}

func newContentIndex() *contentIndex {
	return &contentIndex{planted: map[string]origin{}, legitimate: map[string]bool{}, lines: map[string]bool{}}
}

// legit records a value deid may keep: it is not content, even where it
// also occurs in a field outside the allowlist.
// Dimension values (normalized) also count in their normalized forms.
func (ix *contentIndex) legit(v any, normalized bool) {
	s, ok := v.(string)
	if !ok || len(s) < MinContentLen {
		return
	}
	t := strings.TrimSpace(s)
	ix.legitimate[t] = true
	if normalized {
		ix.legitimate[strings.ToLower(t)] = true
		ix.legitimate[strings.ToUpper(t)] = true
	}
}

// merge adds what another index found.
func (ix *contentIndex) merge(o *contentIndex) {
	for s, at := range o.planted {
		if _, ok := ix.planted[s]; !ok {
			ix.planted[s] = at
		}
	}
	for s := range o.legitimate {
		ix.legitimate[s] = true
	}
	for p := range o.lines {
		ix.lines[p] = true
	}
}

// plant records every string inside v (a value of a field outside the
// allowlist), and each of its words, that is long enough to look for.
func (ix *contentIndex) plant(v any, pos, field string) {
	switch x := v.(type) {
	case string:
		ix.add(x, pos, field)
		for _, w := range strings.FieldsFunc(x, unicode.IsSpace) {
			ix.add(w, pos, field)
		}
	case map[string]any:
		for k, e := range x {
			ix.plant(e, pos, field+"."+k)
		}
	case []any:
		for _, e := range x {
			ix.plant(e, pos, field+"[]")
		}
	}
}

func (ix *contentIndex) add(s, pos, field string) {
	s = strings.TrimSpace(s)
	if len(s) < MinContentLen {
		return
	}
	// Timestamps are not free text, and manifests hold window bounds.
	if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return
	}
	if _, ok := ix.planted[s]; !ok {
		ix.planted[s] = origin{pos, field}
	}
	ix.lines[pos] = true
}

// build drops legitimate values and indexes the rest.
func (ix *contentIndex) build() {
	ix.byPrefix = map[string][]string{}
	for s := range ix.planted {
		if ix.legitimate[s] {
			delete(ix.planted, s)
			continue
		}
		p := s[:MinContentLen]
		ix.byPrefix[p] = append(ix.byPrefix[p], s)
	}
}

// Len returns the number of content strings looked for.
func (ix *contentIndex) Len() int { return len(ix.planted) }

// find returns a content string that occurs in text, if any.
func (ix *contentIndex) find(text string) (string, bool) {
	for i := 0; i+MinContentLen <= len(text); i++ {
		cands, ok := ix.byPrefix[text[i:i+MinContentLen]]
		if !ok {
			continue
		}
		for _, c := range cands {
			if strings.HasPrefix(text[i:], c) {
				return c, true
			}
		}
	}
	return "", false
}

// redact shows enough of a content string to find it, and no more: the
// report must not leak what it found.
func redact(s string) string {
	r := []rune(s)
	if len(r) <= 6 {
		return "…"
	}
	return string(r[:6]) + "…"
}

// checkDeadLetters checks what the dead letters keep (contract §3.1): each
// names its record by length and SHA-256; a record's bytes are kept only
// under dead_letters.keep_payload, and never those of a message, of a
// workspace that is excluded, or of a record too broken to tell. Given the
// input, it also reads each kept record's line independently, and searches
// the dead letters' fields and kept bytes for the input's free text: in a
// field it is a failure (a detail must not quote its record), in kept
// bytes a note (keep_payload is a retention decision). The raw files are
// searched with every other output by checkContent.
func (v *verifier) checkDeadLetters() error {
	const sec = SectionInput
	if v.out.DeadLetters == nil {
		return nil
	}
	in := v.input
	var problems []string
	var letters, kept, keptText int
	for _, name := range sortedKeys(v.out.DeadLetters) {
		var lines []Line
		if in != nil {
			if p := in.Partition(name); p != nil {
				lines = p.Lines
			}
		}
		for _, l := range v.out.DeadLetters[name] {
			letters++
			at := fmt.Sprintf("dead letter %s@%d", name, l.Offset)
			if len(l.SHA256) != 2*sha256.Size {
				problems = append(problems, at+": no SHA-256 of its record (a dead letter names its record by length and SHA-256)")
			}
			if in != nil && in.content.byPrefix != nil {
				for field, s := range map[string]string{"detail": l.Detail, "field": l.Field, "reason": l.Reason,
					"payload_withheld": l.PayloadWithheld, "source": l.Source} {
					if found, ok := in.content.find(s); ok {
						problems = append(problems, fmt.Sprintf("%s: its %s holds %q (%d bytes) of the input's free text: a dead letter describes its record, it never quotes it",
							at, field, redact(found), len(found)))
					}
				}
			}
			if l.Value == nil {
				continue
			}
			kept++
			problems = append(problems, v.keptPayload(at, l, lines)...)
			if in != nil && in.content.byPrefix != nil {
				if _, ok := in.content.find(string(l.Value)); ok {
					keptText++
				}
			}
		}
	}
	slices.Sort(problems)
	v.r.add(sec, problems,
		fmt.Sprintf("%d dead letters name their records by length and SHA-256; %d keep the record's bytes, none of a message, an excluded workspace or a record too broken to tell",
			letters, kept),
		fmt.Sprintf("the dead letters keep what they must not: %s", many(len(problems), "problem")))
	if kept > 0 {
		withText := ""
		if in != nil {
			withText = fmt.Sprintf(", %d of them with free text of the input", keptText)
		}
		v.r.note(sec, fmt.Sprintf("%d dead letters keep their record's bytes (dead_letters.keep_payload: true)%s: a retention decision, they hold raw input for as long as the output is kept",
			kept, withText))
	}
	return nil
}

// keptPayload checks one dead letter that keeps its record's bytes; lines
// are the input partition's lines, nil when the input is not given.
func (v *verifier) keptPayload(at string, l deadletter.Line, lines []Line) []string {
	var problems []string
	sum := sha256.Sum256(l.Value)
	if len(l.Value) != l.Length || hex.EncodeToString(sum[:]) != l.SHA256 {
		problems = append(problems, at+": the bytes it keeps are not the record its length and SHA-256 name")
	}
	if l.PayloadWithheld != "" {
		problems = append(problems, fmt.Sprintf("%s: keeps its record's bytes, yet says they were withheld (%s)", at, l.PayloadWithheld))
	}
	env := deadletter.ScanEnvelope(l.Value)
	message := slices.ContainsFunc(env.EventTypes, deadletter.IsMessageType)
	if l.Offset >= 1 && l.Offset <= int64(len(lines)) {
		// verify's own reading of the line, independent of the sink's scan.
		if line := lines[l.Offset-1]; line.Valid && line.Message() {
			message = true
		}
	}
	switch {
	case message:
		problems = append(problems, at+": keeps the bytes of a message record (P4): a message's bytes are never kept, whatever dead_letters.keep_payload says")
	case !env.Whole || len(env.EventTypes) == 0 || len(env.WorkspaceIDs) == 0:
		problems = append(problems, at+": keeps the bytes of a record too broken to tell its event_type and workspace_id: such bytes are withheld")
	case v.input != nil:
		for _, ws := range env.WorkspaceIDs {
			if r := v.input.ExpectedReason(ws); r != pipeline.ReasonNone {
				problems = append(problems, fmt.Sprintf("%s: keeps the bytes of a record of workspace %s, whose records are excluded (%s): remove the dead letter", at, ws, r))
			}
		}
	}
	return problems
}
