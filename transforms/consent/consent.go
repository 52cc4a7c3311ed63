package consent

import (
	"context"
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

// Unattributable-record policies.
const (
	UnattributableFail = "fail"
	UnattributableSkip = "skip"
)

// Config configures the consent store.
type Config struct {
	// SettingsPath is the settings NDJSON file (file mode).
	SettingsPath string `yaml:"settings"`
	// Unknown is what happens to events of a workspace with no settings
	// record: "exclude" (fail closed, the default) or "include".
	Unknown string `yaml:"unknown_workspaces"`
	// Unattributable is what happens to an unreadable settings record
	// that names no workspace: "fail" (the default: the run stops, or the
	// settings follower fails and nothing more is published) or "skip"
	// (the record is logged as skipped and the run goes on).
	Unattributable string `yaml:"unattributable"`
}

// DefaultConfig returns the fail-closed defaults.
func DefaultConfig() Config {
	return Config{Unknown: UnknownExclude, Unattributable: UnattributableFail}
}

// Validate reports every problem, each prefixed with its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.Unknown != UnknownExclude && c.Unknown != UnknownInclude {
		errs = append(errs, fmt.Errorf("consent.unknown_workspaces: must be %q or %q (got %q)", UnknownExclude, UnknownInclude, c.Unknown))
	}
	if c.Unattributable != UnattributableFail && c.Unattributable != UnattributableSkip {
		errs = append(errs, fmt.Errorf("consent.unattributable: must be %q or %q (got %q)", UnattributableFail, UnattributableSkip, c.Unattributable))
	}
	return errors.Join(errs...)
}

// Record is one readable settings record (contract §4).
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
	// Malformed counts unreadable records (each one treated as an opt-out
	// of the workspaces it names, or unattributable).
	Malformed int64
	// Unattributable counts unreadable records that name no workspace.
	Unattributable int64
	// IgnoredOptIns counts opt-ins by a role other than owner or admin.
	IgnoredOptIns int64
	// AfterDeletion counts records for an already deleted workspace.
	AfterDeletion int64
}

// Skipped describes one unreadable settings record.
type Skipped struct {
	Position string
	Reason   string
	// Workspaces are the workspaces the record was attributed to (now
	// excluded, reason consent_unreadable); none when unattributable.
	Workspaces []string
}

type state struct {
	id       string
	optedOut bool
	deleted  bool
	// unreadable: the latest record that changed the state could not be
	// read; the workspace is excluded as if opted out.
	unreadable bool
}

// Store is the consent state. Safe for concurrent use: workers check
// events while a follower applies new records.
type Store struct {
	mu             sync.RWMutex
	byID           map[string]*state
	byPseudo       map[pipeline.Pseudonym]*state
	key            *pipeline.PseudonymKey
	pz             *pipeline.Pseudonymizer
	unknown        pipeline.Reason
	skipUnattrib   bool
	stats          Stats
	skipped        []Skipped
	unattributable []Skipped
	failed         error
	caughtUp       func(context.Context) error
}

// maxSkipped bounds the unreadable records the store remembers for reporting.
const maxSkipped = 100

// MaxUnattributable bounds the unattributable records the store remembers
// (under skip) for the exclusion log; Stats.Unattributable counts them all.
const MaxUnattributable = 100_000

// New returns an empty store that pseudonymizes workspace ids with key. The
// pipeline's workers take the same key from the store (PseudonymKey).
func New(cfg Config, key *pipeline.PseudonymKey) (*Store, error) {
	if key == nil {
		return nil, errors.New("consent: no pseudonym key")
	}
	if cfg.Unattributable == "" {
		cfg.Unattributable = UnattributableFail
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{byID: map[string]*state{}, byPseudo: map[pipeline.Pseudonym]*state{},
		key: key, pz: key.Pseudonymizer(), unknown: pipeline.ReasonConsentUnknown,
		skipUnattrib: cfg.Unattributable == UnattributableSkip}
	if cfg.Unknown == UnknownInclude {
		s.unknown = pipeline.ReasonNone
	}
	return s, nil
}

// PseudonymKey returns the key the store pseudonymizes workspace ids with;
// the pipeline's workers pseudonymize with it too.
func (s *Store) PseudonymKey() *pipeline.PseudonymKey { return s.key }

// SetCaughtUp installs the function CaughtUp waits on (a settings follower
// in streaming mode). Without one, the store is always caught up.
func (s *Store) SetCaughtUp(f func(context.Context) error) { s.caughtUp = f }

// LoadFile applies every record of a settings NDJSON file, in line order
// (see Load). A file that cannot be read is an error.
func (s *Store) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("consent: %w (set consent.settings or --settings to the settings NDJSON file)", err)
	}
	defer f.Close()
	return s.Load(f, path)
}

// Load applies every record read from r, one per line (Scan); name labels
// positions ("name:line"). An unreadable record excludes the workspaces it
// names; one that names none stops the load with an *UnattributableError
// unless the store skips them (consent.unattributable: skip).
func (s *Store) Load(r io.Reader, name string) error {
	err := Scan(r, func(line int, rd Reading) error {
		return s.ApplyReading(rd, fmt.Sprintf("%s:%d", name, line))
	})
	var ue *UnattributableError
	if err != nil && !errors.As(err, &ue) {
		return fmt.Errorf("consent: reading %s: %w", name, err)
	}
	return err
}

// UnattributableError is an unreadable settings record that names no
// workspace, under consent.unattributable: fail.
type UnattributableError struct {
	Position string
	Reason   string
}

func (e *UnattributableError) Error() string {
	return fmt.Sprintf("consent: settings record %s is unreadable (%s) and names no workspace, so it cannot be applied and consent is not known: "+
		"fix or remove the record, or set consent.unattributable: skip to log it as skipped and go on", e.Position, e.Reason)
}

// ApplyValue reads one settings record (Read) and applies it; key is its
// Kafka key (nil in file mode), pos its position for the report. See
// ApplyReading.
func (s *Store) ApplyValue(key, value []byte, pos string) error {
	return s.ApplyReading(Read(key, value), pos)
}

// ApplyReading applies one record as read. A readable record is applied
// under the rules of contract §4. An unreadable one excludes every workspace it
// is attributed to from now on (reason consent_unreadable; deletion stays
// final), is counted and remembered for the report, and returns nil. One
// attributed to no workspace is remembered (Unattributable) when the store
// skips them; otherwise it returns an *UnattributableError and the store
// fails from then on: CaughtUp returns that error, so nothing more is
// published.
func (s *Store) ApplyReading(rd Reading, pos string) error {
	if rd.Err == nil {
		s.Apply(rd.Record)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Malformed++
	sk := Skipped{Position: pos, Reason: rd.Err.Error(), Workspaces: rd.Workspaces}
	if len(rd.Workspaces) == 0 {
		s.stats.Unattributable++
		if !s.skipUnattrib {
			err := &UnattributableError{Position: pos, Reason: rd.Err.Error()}
			if s.failed == nil {
				s.failed = err
			}
			return err
		}
		if len(s.unattributable) < MaxUnattributable {
			s.unattributable = append(s.unattributable, sk)
		}
	}
	if len(s.skipped) < maxSkipped {
		s.skipped = append(s.skipped, sk)
	}
	for _, id := range rd.Workspaces {
		st := s.byID[id]
		switch {
		case st == nil:
			s.add(&state{id: id, unreadable: true})
		case st.deleted:
			s.stats.AfterDeletion++
		default:
			st.unreadable = true
		}
	}
	return nil
}

// add registers a new workspace's state; s.mu is held.
func (s *Store) add(st *state) {
	s.byID[st.id] = st
	s.byPseudo[s.pz.Of([]byte(st.id))] = st
}

// Tombstone marks a workspace deleted (a null value on the settings topic).
func (s *Store) Tombstone(workspaceID string) {
	s.Apply(Record{WorkspaceID: workspaceID, Deleted: true})
}

// Apply applies one readable record under the rules of contract §4 and reports
// whether it changed anything. A workspace excluded by an unreadable
// record counts as opted out: only an opt-out, a deletion, or an opt-in by
// an owner or admin changes it.
func (s *Store) Apply(rec Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Applied++
	st := s.byID[rec.WorkspaceID]
	if st == nil {
		s.add(&state{id: rec.WorkspaceID, deleted: rec.Deleted, optedOut: rec.OptOut != nil && *rec.OptOut})
		return true
	}
	switch {
	case st.deleted:
		s.stats.AfterDeletion++
		return false
	case rec.Deleted:
		st.deleted = true
		return true
	case rec.OptOut == nil:
		return false
	case *rec.OptOut:
		changed := !st.optedOut || st.unreadable
		st.optedOut, st.unreadable = true, false
		return changed
	case !st.optedOut && !st.unreadable:
		return false
	case rec.Role == "owner" || rec.Role == "admin":
		st.optedOut, st.unreadable = false, false
		return true
	default:
		s.stats.IgnoredOptIns++
		return false
	}
}

// Check is the ingest gate: deleted, unreadable, opted out, or unknown
// (contract §3.7).
func (s *Store) Check(ev *pipeline.Event) pipeline.Reason {
	s.mu.RLock()
	st := s.byID[string(ev.WorkspaceID)]
	s.mu.RUnlock()
	switch {
	case st == nil:
		return s.unknown
	case st.deleted:
		return pipeline.ReasonWorkspaceDeleted
	case st.unreadable:
		return pipeline.ReasonConsentUnreadable
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
	case st.unreadable:
		return pipeline.ReasonConsentUnreadableBeforePublish, st.id
	case st.optedOut:
		return pipeline.ReasonOptedOutBeforePublish, st.id
	}
	return pipeline.ReasonNone, st.id
}

// CaughtUp waits for the settings follower, if any. It fails, whatever
// the follower says, once an unattributable record stopped the store.
func (s *Store) CaughtUp(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	if s.caughtUp == nil {
		return ctx.Err()
	}
	if err := s.caughtUp(ctx); err != nil {
		return err
	}
	return s.Err()
}

// Err returns the error that stopped the store (an unattributable record
// under consent.unattributable: fail), or nil.
func (s *Store) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.failed
}

// Unattributable returns every unattributable record skipped so far
// (consent.unattributable: skip), for the exclusion log.
func (s *Store) Unattributable() []Skipped {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Skipped(nil), s.unattributable...)
}

// Stats returns the counts so far.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

// Skipped returns the first unreadable records (at most 100).
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
