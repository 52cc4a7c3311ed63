package deadletter

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"unicode/utf8"

	"github.com/mya/deid/pipeline"
)

// Line is one dead letter: a line of a dead-letter file, and the value of a
// message on the dead-letter topic.
type Line struct {
	Source    string `json:"source"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Reason is the MalformedError's code, e.g. "invalid_json".
	Reason string `json:"reason"`
	Field  string `json:"field"`
	// Detail says what rule the record broke and where; it never quotes
	// the record (a field or detail that does is QuotedWithheld).
	Detail string `json:"detail"`
	// Length and SHA256 (hex) identify the record's bytes without keeping
	// them: whoever holds the source can find the record and check it.
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
	// Value is the record's original bytes (base64 in JSON), kept only with
	// dead_letters.keep_payload and only when Retention allows it.
	Value []byte `json:"value_base64,omitempty"`
	// PayloadWithheld says why the bytes were not kept although
	// dead_letters.keep_payload asked for them: one of the Withheld*
	// values. Empty when the bytes are kept or were not asked for.
	PayloadWithheld string `json:"payload_withheld,omitempty"`
}

// Why a dead letter did not keep its record's bytes under
// dead_letters.keep_payload. The values are stable strings.
const (
	// WithheldMessageType: the record's event_type is, or may be, a
	// private message (IsMessageType).
	WithheldMessageType = "message_type"
	// WithheldExcludedWorkspace: the record's workspace is excluded at
	// that moment (opted out, deleted, unreadable consent, or unknown when
	// unknown workspaces are excluded).
	WithheldExcludedWorkspace = "excluded_workspace"
	// WithheldUnreadable: the record is too broken to tell its event_type
	// and workspace_id, so neither rule can be checked (fail closed).
	WithheldUnreadable = "envelope_unreadable"
	// WithheldTooLarge: the record is larger than the sink can carry.
	WithheldTooLarge = "too_large"
)

// maxDetail bounds a dead letter's detail, in bytes.
const maxDetail = 256

// QuotedWithheld replaces a field or detail that quotes its record: a
// detail names the rule broken and where, never the content. deid's own
// details never quote, so this is a second line of defence.
const QuotedWithheld = "(withheld: it quoted the record)"

// quoteRun is the shortest run of a record's bytes that, found in a detail,
// counts as quoting the record.
const quoteRun = 12

// quotes tells whether s holds a run of quoteRun bytes of rec. It costs one
// pass over rec, with a lookup per byte.
func quotes(s string, rec []byte) bool {
	if len(s) < quoteRun || len(rec) < quoteRun {
		return false
	}
	runs := make(map[string]struct{}, len(s)-quoteRun+1)
	var first [256]bool
	for i := 0; i+quoteRun <= len(s); i++ {
		runs[s[i:i+quoteRun]] = struct{}{}
		first[s[i]] = true
	}
	for i := 0; i+quoteRun <= len(rec); i++ {
		if !first[rec[i]] {
			continue
		}
		if _, ok := runs[string(rec[i:i+quoteRun])]; ok {
			return true
		}
	}
	return false
}

// Retention decides what a dead letter keeps of its record. The zero value
// keeps nothing but the metadata, which is the default.
type Retention struct {
	// KeepPayload keeps the record's bytes (dead_letters.keep_payload),
	// unless the record is a message type, its workspace is excluded, or
	// it is too broken to tell.
	KeepPayload bool
	// Excluded tells whether a workspace's records are excluded at this
	// moment. It must be safe for concurrent use. Without it no workspace
	// counts as readable, and no bytes are kept.
	Excluded func(workspaceID []byte) bool
	// MaxPayload bounds the bytes kept; 0 for no bound.
	MaxPayload int
}

// Letter builds rec's dead letter. Value, when kept, aliases rec.Value:
// encode it before the caller reuses its buffer.
func (r Retention) Letter(rec pipeline.Record, reason *pipeline.MalformedError) Line {
	sum := sha256.Sum256(rec.Value)
	l := Line{Source: rec.Pos.Source, Partition: rec.Pos.Partition, Offset: rec.Pos.Offset,
		Length: len(rec.Value), SHA256: hex.EncodeToString(sum[:])}
	if reason != nil {
		l.Reason, l.Field, l.Detail = reason.Code, reason.Field, shorten(reason.Detail)
		if quotes(l.Field, rec.Value) {
			l.Field = QuotedWithheld
		}
		if quotes(l.Detail, rec.Value) {
			l.Detail = QuotedWithheld
		}
	}
	if r.KeepPayload {
		if l.PayloadWithheld = r.withhold(rec.Value); l.PayloadWithheld == "" {
			l.Value = rec.Value
		}
	}
	return l
}

// withhold returns why b may not be kept, or "" when it may.
func (r Retention) withhold(b []byte) string {
	env := ScanEnvelope(b)
	for _, t := range env.EventTypes {
		if IsMessageType(t) {
			return WithheldMessageType
		}
	}
	if !env.Whole || len(env.EventTypes) == 0 || len(env.WorkspaceIDs) == 0 {
		return WithheldUnreadable
	}
	if slices.Contains(env.EventTypes, "") || slices.Contains(env.WorkspaceIDs, "") {
		return WithheldUnreadable
	}
	for _, ws := range env.WorkspaceIDs {
		if r.Excluded == nil || r.Excluded([]byte(ws)) {
			return WithheldExcludedWorkspace
		}
	}
	if r.MaxPayload > 0 && len(b) > r.MaxPayload {
		return WithheldTooLarge
	}
	return ""
}

// shorten cuts a detail to maxDetail bytes, at a rune boundary.
func shorten(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	i := maxDetail
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
