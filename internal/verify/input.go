package verify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sources/file"
)

// Input is verify's own reading of a file-mode run's input and settings:
// encoding/json and the rules of SPEC §3 and §4, independent of deid's
// decoder and consent store, so that a bug there cannot hide itself.
type Input struct {
	// Partitions are the input files, sorted by partition name.
	Partitions []*InputPartition
	// Workspaces is the consent state after the whole settings file, by
	// workspace id.
	Workspaces map[string]*Workspace
	// SettingsLines counts the settings lines; SettingsSkipped the
	// malformed ones, which are skipped (SPEC §4).
	SettingsLines, SettingsSkipped int
	// UnknownExcluded tells whether workspaces without a settings record
	// are excluded (consent.unknown_workspaces: exclude, the default).
	UnknownExcluded bool
	// content indexes the free text of the input.
	content *contentIndex
}

// InputPartition is one input file.
type InputPartition struct {
	// Name is the partition's name: the file's base name and [0].
	Name  string
	Path  string
	Lines []Line
}

// Line is what verify reads from one input line.
type Line struct {
	// Valid tells whether the line is one JSON object.
	Valid bool
	// The envelope's string fields, "" when absent or not a string.
	EventID, EventType, WorkspaceID string
	// OccurredAt is the event time in microseconds, 0 when absent or not
	// an RFC 3339 timestamp.
	OccurredAt int64
	// Minor is the age gate's reason for a campaign.metrics event (SPEC
	// §3.4), "" for none.
	Minor string
}

// Message tells whether the line is a message event (SPEC §3.2: any type
// starting with "message." and support.message; case is ignored).
func (l *Line) Message() bool {
	t := strings.ToLower(l.EventType)
	return strings.HasPrefix(t, "message.") || t == "support.message"
}

// Workspace is one workspace's consent state and the settings records
// that made it.
type Workspace struct {
	ID string
	// OptedOut and Deleted are the state after the last record.
	OptedOut, Deleted bool
	// Since is when the current opt-out or deletion began (the record's
	// updated_at, zero when unparseable); zero when neither holds.
	Since time.Time
	// History lists every settings record of the workspace, in order.
	History []SettingsChange
}

// SettingsChange is one settings record of a workspace and what it did.
type SettingsChange struct {
	// Line is the settings file's line number.
	Line      int
	UpdatedAt time.Time
	Role      string
	// Effect says what the record did, in words: "opted out", "opted in
	// again by owner", "deleted", "ignored: an opt-in by editor", …
	Effect string
}

// ExpectedReason returns the consent reason every event of workspace id
// must be excluded for at ingest (workspace_deleted, opted_out,
// consent_unknown), or ReasonNone when its events may contribute.
func (in *Input) ExpectedReason(id string) pipeline.Reason {
	ws := in.Workspaces[id]
	switch {
	case ws == nil && in.UnknownExcluded:
		return pipeline.ReasonConsentUnknown
	case ws == nil:
		return pipeline.ReasonNone
	case ws.Deleted:
		return pipeline.ReasonWorkspaceDeleted
	case ws.OptedOut:
		return pipeline.ReasonOptedOut
	}
	return pipeline.ReasonNone
}

// Partition returns the named input partition, or nil.
func (in *Input) Partition(name string) *InputPartition {
	for _, p := range in.Partitions {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ReadInput reads the input files of cfg (resolved as `deid run` resolves
// them) and the settings file. unknown is consent.unknown_workspaces
// ("exclude" when empty).
func ReadInput(cfg file.Config, settings, unknown string) (*Input, error) {
	if cfg.BatchSize == 0 {
		def := file.DefaultConfig()
		def.Paths = cfg.Paths
		if cfg.Exclude != nil {
			def.Exclude = cfg.Exclude
		}
		cfg = def
	}
	src, err := file.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	in := &Input{Workspaces: map[string]*Workspace{}, UnknownExcluded: unknown != "include", content: newContentIndex()}
	if err := in.readSettings(settings); err != nil {
		return nil, err
	}
	// One file per goroutine, each with its own content index, merged
	// after: reading is most of verify's time.
	files := src.Files()
	parts := make([]*Input, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			one := &Input{content: newContentIndex()}
			p := &InputPartition{Name: pipeline.PartitionID{Source: filepath.Base(path)}.String(), Path: path}
			errs[i] = one.readFile(p)
			one.Partitions = []*InputPartition{p}
			parts[i] = one
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, one := range parts {
		in.Partitions = append(in.Partitions, one.Partitions...)
		in.content.merge(one.content)
	}
	in.content.build()
	return in, nil
}

// ReadSettings reads only the settings file: an Input with no partitions,
// for questions about consent alone.
func ReadSettings(settings, unknown string) (*Input, error) {
	in := &Input{Workspaces: map[string]*Workspace{}, UnknownExcluded: unknown != "include", content: newContentIndex()}
	if err := in.readSettings(settings); err != nil {
		return nil, err
	}
	return in, nil
}

// readFile reads one input file line by line, as deid's file source
// delimits lines: a final newline starts no line, a trailing '\r' and a
// leading byte-order mark are dropped, gzip is recognized by its magic.
func (in *Input) readFile(p *InputPartition) error {
	f, err := os.Open(p.Path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	br := bufio.NewReaderSize(f, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("input: %s: %w", p.Path, err)
		}
		defer zr.Close()
		r = bufio.NewReaderSize(zr, 1<<20)
	} else {
		r = br
	}
	lr := r.(*bufio.Reader)
	for n := 1; ; n++ {
		b, err := lr.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("input: %s: line %d: %w", p.Path, n, err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		p.Lines = append(p.Lines, in.readLine(b, p.Name, n))
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// The allowlist of SPEC §3.3, verify's own copy.
var (
	envelopeFields = set("event_id", "event_type", "occurred_at", "workspace_id", "user_id", "payload")
	payloadFields  = map[string]map[string]bool{
		"campaign.metrics": set("campaign_id", "creator_id", "platform", "content_type", "industry", "audience_country",
			"follower_count", "creator_age", "guardian_consent", "impressions", "reach", "clicks", "likes", "comments",
			"shares", "saves", "video_views", "conversions", "spend_cents", "revenue_cents"),
		"usage.interaction": set("feature", "action", "plan_tier", "team_size", "device_type", "duration_ms"),
	}
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// readLine reads one line: its envelope, its age gate, and its free text
// into the content index.
func (in *Input) readLine(b []byte, part string, n int) Line {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return Line{}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Line{}
	}
	l := Line{Valid: true}
	l.EventID, _ = obj["event_id"].(string)
	l.EventType, _ = obj["event_type"].(string)
	l.WorkspaceID, _ = obj["workspace_id"].(string)
	if s, ok := obj["occurred_at"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			l.OccurredAt = t.UnixMicro()
		}
	}
	pos := fmt.Sprintf("%s@%d", part, n)
	// The envelope's values may appear in the exclusion log.
	for k, v := range obj {
		if envelopeFields[k] && k != "payload" {
			in.content.legit(v, false)
		} else if !envelopeFields[k] {
			in.content.plant(v, pos, k)
		}
	}
	payload, isObject := obj["payload"].(map[string]any)
	if !isObject {
		in.content.plant(obj["payload"], pos, "payload")
	}
	allowed := payloadFields[l.EventType]
	for k, v := range payload {
		if allowed[k] {
			if s, ok := v.(string); ok {
				in.content.legit(s, true)
				continue
			}
		}
		if !allowed[k] || !scalar(v) {
			in.content.plant(v, pos, "payload."+k)
		}
	}
	if l.EventType == "campaign.metrics" && payload != nil {
		if age, ok := payload["creator_age"].(json.Number); ok {
			if a, err := age.Float64(); err == nil {
				consent, _ := payload["guardian_consent"].(bool)
				switch {
				case a < 13:
					l.Minor = pipeline.ReasonMinorUnder13.String()
				case a <= 17 && !consent:
					l.Minor = pipeline.ReasonMinorWithoutGuardianConsent.String()
				}
			}
		}
	}
	return l
}

func scalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// settingsRecord is one settings line (SPEC §4).
type settingsRecord struct {
	WorkspaceID *string `json:"workspace_id"`
	OptOut      *bool   `json:"ai_training_opt_out"`
	Deleted     *bool   `json:"deleted"`
	UpdatedAt   string  `json:"updated_at"`
	Role        string  `json:"updated_by_role"`
}

// readSettings applies the settings file's records in line order under the
// rules of SPEC §4: a workspace's first record sets its state whatever the
// role; an opt-out is always honoured; an opt-in counts only from an owner
// or admin; deletion is final; a malformed line is skipped.
func (in *Input) readSettings(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("settings: %s: %w", path, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			in.SettingsLines++
			var rec settingsRecord
			deleted := false
			switch uerr := json.Unmarshal(b, &rec); {
			case uerr != nil, rec.WorkspaceID == nil, *rec.WorkspaceID == "":
				in.SettingsSkipped++
			default:
				deleted = rec.Deleted != nil && *rec.Deleted
				if rec.OptOut == nil && !deleted {
					in.SettingsSkipped++
				} else {
					in.apply(n, *rec.WorkspaceID, rec.OptOut, deleted, rec.UpdatedAt, rec.Role)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func (in *Input) apply(line int, id string, optOut *bool, deleted bool, updatedAt, role string) {
	at, _ := time.Parse(time.RFC3339Nano, updatedAt)
	ch := SettingsChange{Line: line, UpdatedAt: at, Role: role}
	ws := in.Workspaces[id]
	if ws == nil {
		ws = &Workspace{ID: id, Deleted: deleted, OptedOut: optOut != nil && *optOut}
		in.Workspaces[id] = ws
		switch {
		case ws.Deleted:
			ch.Effect, ws.Since = "deleted (first record)", at
		case ws.OptedOut:
			ch.Effect, ws.Since = "opted out (first record)", at
		default:
			ch.Effect = "included (first record)"
		}
		ws.History = append(ws.History, ch)
		return
	}
	switch {
	case ws.Deleted:
		ch.Effect = "ignored: the workspace is deleted, which is final"
	case deleted:
		ws.Deleted = true
		ch.Effect = "deleted"
		if !ws.OptedOut {
			ws.Since = at
		}
	case *optOut == ws.OptedOut:
		ch.Effect = "no change"
	case *optOut:
		ws.OptedOut, ws.Since = true, at
		ch.Effect = "opted out"
	case role == "owner" || role == "admin":
		ws.OptedOut, ws.Since = false, time.Time{}
		ch.Effect = "opted in again by " + role
	default:
		ch.Effect = fmt.Sprintf("ignored: an opt-in by %q, which only an owner or admin may make", role)
	}
	ws.History = append(ws.History, ch)
}
