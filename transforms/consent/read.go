package consent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode"
	"unicode/utf8"
)

// MaxRecordBytes is the longest settings record read: a longer one is
// unreadable (its workspace is still identified from its beginning).
const MaxRecordBytes = 1 << 20

// Roles are the values updated_by_role may take; any other is unreadable.
var Roles = []string{"owner", "admin", "editor", "viewer"}

// The known fields of a settings record.
const (
	fieldWorkspace = "workspace_id"
	fieldOptOut    = "ai_training_opt_out"
	fieldDeleted   = "deleted"
	fieldUpdatedAt = "updated_at"
	fieldRole      = "updated_by_role"
)

// Reading is what Read makes of one settings record: either a readable
// Record (Err nil) or an unreadable one, with the workspaces it can still
// be attributed to.
type Reading struct {
	// Record is the record, valid when Err is nil.
	Record Record
	// Err says why the record is unreadable, nil when it is readable.
	Err error
	// Workspaces are the workspaces an unreadable record is attributed
	// to: its key and every workspace_id string found in it, in order,
	// without repeats. Empty when none can be identified (unattributable).
	// For a readable record it holds the record's workspace (and a key
	// that differs, which makes the record unreadable).
	Workspaces []string
}

// Read reads one settings record strictly (contract §4): it must be a single
// JSON object, valid UTF-8, at most MaxRecordBytes, with no duplicate key
// (at any depth; keys that differ only in case count as the same key), no
// key that differs from a known field only in case, each known field of
// its type (workspace_id a non-empty string, ai_training_opt_out and
// deleted booleans, updated_at a string, updated_by_role one of Roles),
// and nothing after the object but white space. A record that deletes
// ("deleted": true) needs neither ai_training_opt_out nor a role, since a
// deletion is honoured whatever the role; any other record needs both.
// Unknown fields are ignored.
//
// key is the record's Kafka key, the workspace id, or nil (file mode). A
// readable record whose workspace_id differs from a non-empty key is
// unreadable and attributed to both.
//
// Read never panics; it does not retain value or key.
func Read(key, value []byte) Reading {
	var rd Reading
	if len(value) > MaxRecordBytes {
		rd.Err = fmt.Errorf("the record is %d bytes, longer than the %d bytes a settings record may have", len(value), MaxRecordBytes)
		rd.Workspaces = attribute(key, value[:MaxRecordBytes])
		return rd
	}
	rec, err := readStrict(value)
	if err == nil && len(key) > 0 && string(key) != rec.WorkspaceID {
		err = errors.New("workspace_id differs from the record's key")
	}
	if err != nil {
		rd.Err = err
		rd.Workspaces = attribute(key, value)
		return rd
	}
	rd.Record = rec
	rd.Workspaces = []string{rec.WorkspaceID}
	return rd
}

// attribute returns the workspaces an unreadable record names: its key,
// then every workspace_id string Identify finds.
func attribute(key, value []byte) []string {
	var ids []string
	if len(key) > 0 && utf8.Valid(key) {
		ids = append(ids, string(key))
	}
	for _, id := range Identify(value) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Identify returns every non-empty workspace_id string at the top level of
// the JSON objects that value begins with, reading leniently: it stops at
// the first syntax error and keeps what it found before it, and it reads
// on into a second object on the same line. A key that differs from
// workspace_id only in case counts (fail closed: each id found is treated
// as unreadable). An id that is not valid UTF-8 identifies nothing.
func Identify(value []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	type frame struct{ obj, wantKey bool }
	var stack []frame
	var ids []string
	pending := false // the next value is a top-level workspace_id's
	valid := utf8.Valid(value)
	done := func() { // a value is complete
		pending = false
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return ids
		}
		n := len(stack)
		if s, ok := tok.(string); ok && n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			stack[n-1].wantKey = false
			pending = n == 1 && fold(s) == fold(fieldWorkspace)
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				pending = false
				stack = append(stack, frame{obj: true, wantKey: true})
			case '[':
				pending = false
				stack = append(stack, frame{})
			default:
				if n > 0 {
					stack = stack[:n-1]
				}
				done()
			}
		case string:
			if pending && t != "" && (valid || !bytes.ContainsRune([]byte(t), utf8.RuneError)) && !slices.Contains(ids, t) {
				ids = append(ids, t)
			}
			done()
		default:
			done()
		}
	}
}

// readStrict reads one record under the rules of Read, without the length
// and key checks.
func readStrict(value []byte) (Record, error) {
	var rec Record
	if !utf8.Valid(value) {
		return rec, errors.New("the record is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return rec, errors.New(readProblem(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return rec, errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	var optOut, deleted *bool
	var hasWS, hasRole bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return rec, errors.New(readProblem(err))
		}
		k, _ := tok.(string)
		fk := fold(k)
		if seen[fk] {
			return rec, fmt.Errorf("the key %s appears more than once", keyName(fk))
		}
		seen[fk] = true
		field := knownField(fk)
		if field != "" && k != field {
			return rec, fmt.Errorf("a key differs from the field %s only in case", field)
		}
		if field == "" {
			if err := skipValue(dec); err != nil {
				return rec, err
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return rec, errors.New(readProblem(err))
		}
		switch field {
		case fieldWorkspace, fieldUpdatedAt, fieldRole:
			s, ok := tok.(string)
			if !ok {
				return rec, fmt.Errorf("%s is %s, not a string", field, kind(tok))
			}
			switch field {
			case fieldWorkspace:
				if s == "" {
					return rec, errors.New("workspace_id is empty")
				}
				rec.WorkspaceID, hasWS = s, true
			case fieldUpdatedAt:
				rec.UpdatedAt = s
			case fieldRole:
				if !slices.Contains(Roles, s) {
					return rec, fmt.Errorf("updated_by_role is not one of %v", Roles)
				}
				rec.Role, hasRole = s, true
			}
		case fieldOptOut, fieldDeleted:
			b, ok := tok.(bool)
			if !ok {
				return rec, fmt.Errorf("%s is %s, not a boolean", field, kind(tok))
			}
			if field == fieldOptOut {
				optOut = &b
			} else {
				deleted = &b
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return rec, errors.New(readProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return rec, errors.New("data after the object (one record per line)")
	}
	rec.OptOut = optOut
	rec.Deleted = deleted != nil && *deleted
	switch {
	case !hasWS:
		return rec, errors.New("missing workspace_id")
	case rec.Deleted:
		return rec, nil
	case optOut == nil:
		return rec, errors.New("missing ai_training_opt_out")
	case !hasRole:
		return rec, errors.New("missing updated_by_role")
	}
	return rec, nil
}

// keyName names a key in a message: a known field by its name, any other
// key only as such, since a key is input data too (it can be a phone
// number or an id) and messages reach the logs.
func keyName(folded string) string {
	if f := knownField(folded); f != "" {
		return f
	}
	return "(not a settings field)"
}

// skipValue reads one value (after its key), checking every object within
// it for duplicate keys.
func skipValue(dec *json.Decoder) error {
	type frame struct {
		obj     bool
		wantKey bool
		seen    map[string]bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return errors.New(readProblem(err))
		}
		n := len(stack)
		if s, ok := tok.(string); ok && n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			f := fold(s)
			if stack[n-1].seen[f] {
				return fmt.Errorf("the key %s appears more than once in an object", keyName(f))
			}
			stack[n-1].seen[f] = true
			stack[n-1].wantKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{obj: true, wantKey: true, seen: map[string]bool{}})
				continue
			case '[':
				stack = append(stack, frame{})
				continue
			default:
				stack = stack[:n-1]
				n--
			}
		}
		if n == 0 {
			return nil
		}
		if stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}

// knownField returns the known field whose folded name is fk, or "".
func knownField(fk string) string {
	for _, f := range []string{fieldWorkspace, fieldOptOut, fieldDeleted, fieldUpdatedAt, fieldRole} {
		if fold(f) == fk {
			return f
		}
	}
	return ""
}

// kind names a JSON token's type for a message (never its value).
func kind(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	}
	return "of another type"
}

// fold is encoding/json's case folding of object keys: it matches a key to
// a struct field case-insensitively, ASCII and Unicode simple folding
// alike, so a key that folds to a known field must be read as that field.
func fold(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, foldRune(r))
		i += n
	}
	return string(b)
}

// foldRune returns the smallest rune of r's case-folding orbit, as
// encoding/json does.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// Scan reads a settings NDJSON stream line by line and calls fn with each
// non-blank line's number (from 1) and Reading. Lines end at '\n'; a
// trailing '\r' and a leading byte-order mark are dropped. A line longer
// than MaxRecordBytes is unreadable, attributed from its beginning, and
// the stream goes on after it. Scan returns fn's error, or an error when r
// fails; never one for a bad record.
func Scan(r io.Reader, fn func(line int, rd Reading) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	const limit = MaxRecordBytes + 2 // room for "\r\n"
	var buf []byte
	for line := 1; ; line++ {
		buf = buf[:0]
		over := false
		var err error
		for {
			var frag []byte
			frag, err = br.ReadSlice('\n')
			room := limit - len(buf)
			if len(frag) > room {
				over = true
				frag = frag[:max(room, 0)]
			}
			buf = append(buf, frag...)
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if len(buf) == 0 && err == io.EOF {
			return nil
		}
		b := bytes.TrimSuffix(buf, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if over || len(b) > MaxRecordBytes {
			if ferr := fn(line, Reading{
				Err:        fmt.Errorf("the line is longer than the %d bytes a settings record may have", MaxRecordBytes),
				Workspaces: attribute(nil, b[:min(len(b), MaxRecordBytes)]),
			}); ferr != nil {
				return ferr
			}
		} else if len(bytes.TrimSpace(b)) > 0 {
			if ferr := fn(line, Read(nil, b)); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}
