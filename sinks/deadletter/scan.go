package deadletter

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Envelope is what a tolerant scan of a record's top-level keys finds: the
// two fields that decide whether a dead letter may keep the record's bytes.
// A malformed record is often still readable up to the point where it
// breaks, so the scan reads what it can and says whether that was all.
type Envelope struct {
	// EventTypes and WorkspaceIDs are every string value of the top-level
	// keys event_type and workspace_id, unescaped, in order (a key may
	// repeat in a malformed record).
	EventTypes, WorkspaceIDs []string
	// Whole tells that the scan saw every top-level key of the bytes: the
	// object closed with only white space after it, or the bytes ended
	// inside it (a truncated record has nothing more to see). It is false
	// when the bytes are not an object, when the scan lost its way in
	// them, or when event_type or workspace_id has a value that is not a
	// whole string.
	Whole bool
}

// ScanEnvelope finds event_type and workspace_id among the top-level keys
// of b, which need not be valid JSON. It never fails: what it cannot read
// it reports as not Whole. Keys are unescaped as JSON does, so
// "event\u005ftype" is event_type, as the decoder reads it.
func ScanEnvelope(b []byte) Envelope {
	var env Envelope
	s := scanner{b: b}
	s.i = len(b) - len(strings.TrimPrefix(string(b), "\ufeff"))
	s.space()
	if s.end() || b[s.i] != '{' {
		return env
	}
	s.i++
	for {
		s.space()
		if s.end() {
			env.Whole = true // truncated: nothing more to see
			return env
		}
		switch b[s.i] {
		case '}':
			s.i++
			s.space()
			env.Whole = s.end()
			return env
		case ',':
			s.i++
			continue
		case '"':
		default:
			return env
		}
		key, st := s.str()
		switch st {
		case scanTruncated:
			env.Whole = true
			return env
		case scanBroken:
			return env
		}
		s.space()
		if s.end() {
			env.Whole = true
			return env
		}
		if b[s.i] != ':' {
			return env
		}
		s.i++
		s.space()
		if s.end() {
			env.Whole = true
			return env
		}
		if key == "event_type" || key == "workspace_id" {
			// Only a whole string tells the record's type or workspace; a
			// truncated "message.di… must not pass for something else.
			if b[s.i] != '"' {
				return env
			}
			v, st := s.str()
			if st != scanOK {
				return env
			}
			if key == "event_type" {
				env.EventTypes = append(env.EventTypes, v)
			} else {
				env.WorkspaceIDs = append(env.WorkspaceIDs, v)
			}
		} else {
			switch s.skip() {
			case scanTruncated:
				env.Whole = true
				return env
			case scanBroken:
				return env
			}
		}
		s.space()
		if s.end() {
			env.Whole = true
			return env
		}
		if c := b[s.i]; c != ',' && c != '}' {
			return env
		}
	}
}

// IsMessageType tells whether an event type is, or may be, a private
// message (message.*, support.message). It errs towards yes: any type that
// mentions "message", in any case, counts, so that a variant spelling
// cannot pass a message off as something else.
func IsMessageType(t string) bool {
	return strings.Contains(strings.ToLower(t), "message")
}

// scanState is how reading one token went.
type scanState int

const (
	scanOK scanState = iota
	// scanTruncated: the bytes ended inside the token.
	scanTruncated
	// scanBroken: the token is not what JSON allows there.
	scanBroken
)

type scanner struct {
	b []byte
	i int
}

func (s *scanner) end() bool { return s.i >= len(s.b) }

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads the string at s.i (at its opening quote) and returns it
// unescaped.
func (s *scanner) str() (string, scanState) {
	start := s.i
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			raw := s.b[start:s.i]
			if !utf8.Valid(raw) {
				return "", scanBroken
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", scanBroken
			}
			return v, scanOK
		}
		s.i++
	}
	s.i = len(s.b)
	return "", scanTruncated
}

// skip passes over the value at s.i without reading it: a string, an
// object or array (brackets counted, strings inside them skipped), or a
// literal up to the next delimiter.
func (s *scanner) skip() scanState {
	switch s.b[s.i] {
	case '"':
		_, st := s.str()
		if st == scanTruncated {
			return scanTruncated
		}
		return scanOK // a bad escape inside a skipped value changes nothing
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return scanOK
				}
			case '"':
				if _, st := s.str(); st == scanTruncated {
					return scanTruncated
				}
				continue
			}
			s.i++
		}
		return scanTruncated
	case '}', ']', ',', ':':
		return scanBroken
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return scanOK
		case '"', '{', '[', ':':
			return scanBroken
		}
		s.i++
	}
	return scanTruncated
}
