package consent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/mya/deid/pipeline"
)

// Unknown-workspace policies.
const (
	UnknownExclude = "exclude"
	UnknownInclude = "include"
)

// Config configures the consent store.
type Config struct {
	// SettingsPath is the settings NDJSON file (file mode).
	SettingsPath string `yaml:"settings"`
	// Unknown is what happens to events of a workspace with no settings
	// record: "exclude" (fail closed, the default) or "include".
	Unknown string `yaml:"unknown_workspaces"`
}

// DefaultConfig returns the fail-closed defaults.
func DefaultConfig() Config { return Config{Unknown: UnknownExclude} }

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	if c.Unknown != UnknownExclude && c.Unknown != UnknownInclude {
		return fmt.Errorf("consent.unknown_workspaces: must be %q or %q (got %q)", UnknownExclude, UnknownInclude, c.Unknown)
	}
	return nil
}

// Record is one settings record (SPEC §4).
type Record struct {
	WorkspaceID string `json:"workspace_id"`
	OptOut      *bool  `json:"ai_training_opt_out"`
	Deleted     bool   `json:"deleted"`
	UpdatedAt   string `json:"updated_at"`
	Role        string `json:"updated_by_role"`
}

// Stats counts what the store did with settings records.
type Stats struct {
	Applied int64
	// Malformed counts records skipped because they could not be read.
	Malformed int64
	// IgnoredOptIns counts opt-ins by a role other than owner or admin.
	IgnoredOptIns int64
	// AfterDeletion counts records for an already deleted workspace.
	AfterDeletion int64
}

// Skipped describes one settings record that was not applied.
type Skipped struct {
	Position string
	Reason   string
}

type state struct {
	id       string
	optedOut bool
	deleted  bool
}

// Store is the consent state. Safe for concurrent use: workers check
// events while a follower applies new records.
type Store struct {
	mu       sync.RWMutex
	byID     map[string]*state
	byPseudo map[pipeline.Pseudonym]*state
	pz       *pipeline.Pseudonymizer
	unknown  pipeline.Reason
	stats    Stats
	skipped  []Skipped
	caughtUp func(context.Context) error
}

// maxSkipped bounds the skipped records the store remembers for reporting.
const maxSkipped = 100

// New returns an empty store that pseudonymizes workspace ids with key.
func New(cfg Config, key []byte) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{byID: map[string]*state{}, byPseudo: map[pipeline.Pseudonym]*state{},
		pz: pipeline.NewPseudonymizer(key), unknown: pipeline.ReasonConsentUnknown}
	if cfg.Unknown == UnknownInclude {
		s.unknown = pipeline.ReasonNone
	}
	return s, nil
}

// SetCaughtUp installs the function CaughtUp waits on (a settings follower
// in streaming mode). Without one, the store is always caught up.
func (s *Store) SetCaughtUp(f func(context.Context) error) { s.caughtUp = f }

// LoadFile applies every record of a settings NDJSON file, in line order.
// A malformed line is skipped and reported (Skipped), never fatal; a file
// that cannot be read is an error.
func (s *Store) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("consent: %w (set consent.settings or --settings to the settings NDJSON file)", err)
	}
	defer f.Close()
	return s.Load(f, path)
}

// Load applies every record read from r, one per line; name labels positions.
func (s *Store) Load(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		_ = s.ApplyJSON(b, fmt.Sprintf("%s:%d", name, line))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("consent: reading %s after line %d: %w", name, line, err)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// ApplyJSON parses one settings record and applies it. A malformed record
// is counted, remembered for the report and returned as an error; the state
// is unchanged.
func (s *Store) ApplyJSON(b []byte, pos string) error {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(b))
	err := dec.Decode(&rec)
	switch {
	case err != nil:
		err = fmt.Errorf("not a settings record: %s", readProblem(err))
	case rec.WorkspaceID == "":
		err = errors.New("missing workspace_id")
	case rec.OptOut == nil && !rec.Deleted:
		err = errors.New("missing ai_training_opt_out")
	}
	if err != nil {
		s.mu.Lock()
		s.stats.Malformed++
		if len(s.skipped) < maxSkipped {
			s.skipped = append(s.skipped, Skipped{Position: pos, Reason: err.Error()})
		}
		s.mu.Unlock()
		return fmt.Errorf("consent: %s: %w", pos, err)
	}
	s.Apply(rec)
	return nil
}

// Tombstone marks a workspace deleted (a null value on the settings topic).
func (s *Store) Tombstone(workspaceID string) {
	s.Apply(Record{WorkspaceID: workspaceID, Deleted: true})
}

// Apply applies one record under the rules of SPEC §4 and reports whether
// it changed anything.
func (s *Store) Apply(rec Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Applied++
	st := s.byID[rec.WorkspaceID]
	if st == nil {
		st = &state{id: rec.WorkspaceID, deleted: rec.Deleted, optedOut: rec.OptOut != nil && *rec.OptOut}
		s.byID[rec.WorkspaceID] = st
		s.byPseudo[s.pz.Of([]byte(rec.WorkspaceID))] = st
		return true
	}
	switch {
	case st.deleted:
		s.stats.AfterDeletion++
		return false
	case rec.Deleted:
		st.deleted = true
		return true
	case rec.OptOut == nil || *rec.OptOut == st.optedOut:
		return false
	case *rec.OptOut:
		st.optedOut = true
		return true
	case rec.Role == "owner" || rec.Role == "admin":
		st.optedOut = false
		return true
	default:
		s.stats.IgnoredOptIns++
		return false
	}
}

// Check is the ingest gate: deleted, opted out, or unknown.
func (s *Store) Check(ev *pipeline.Event) pipeline.Reason {
	s.mu.RLock()
	st := s.byID[string(ev.WorkspaceID)]
	s.mu.RUnlock()
	switch {
	case st == nil:
		return s.unknown
	case st.deleted:
		return pipeline.ReasonWorkspaceDeleted
	case st.optedOut:
		return pipeline.ReasonOptedOut
	}
	return pipeline.ReasonNone
}

// AtPublish returns why workspace ws's contributions must be withdrawn at
// publication, and its raw id.
func (s *Store) AtPublish(ws pipeline.Pseudonym) (pipeline.Reason, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.byPseudo[ws]
	switch {
	case st == nil:
		if s.unknown != pipeline.ReasonNone {
			// A contribution from a workspace the store does not know cannot
			// have passed the ingest gate; fail closed all the same.
			return pipeline.ReasonDeletedBeforePublish, ""
		}
		return pipeline.ReasonNone, ""
	case st.deleted:
		return pipeline.ReasonDeletedBeforePublish, st.id
	case st.optedOut:
		return pipeline.ReasonOptedOutBeforePublish, st.id
	}
	return pipeline.ReasonNone, st.id
}

// CaughtUp waits for the settings follower, if any.
func (s *Store) CaughtUp(ctx context.Context) error {
	if s.caughtUp == nil {
		return ctx.Err()
	}
	return s.caughtUp(ctx)
}

// Stats returns the counts so far.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

// Skipped returns the first malformed records skipped (at most 100).
func (s *Store) Skipped() []Skipped {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Skipped(nil), s.skipped...)
}

// Workspaces returns the number of workspaces with a record.
func (s *Store) Workspaces() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}
