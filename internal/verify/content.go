package verify

import (
	"strings"
	"time"
	"unicode"
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
