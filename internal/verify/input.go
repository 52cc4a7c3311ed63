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
	"github.com/mya/deid/transforms/consent"
)

// Input is verify's own reading of a file-mode run's input and settings:
// encoding/json and the rules of contract §3 and §4, independent of deid's
// decoder and consent store, so that a bug there cannot hide itself. Only
// the reading of one settings record is shared with the run
// (consent.Scan): whether a record is readable, and whom an unreadable one
// names, must be decided the same way on both sides.
type Input struct {
	// Partitions are the input files, sorted by partition name.
	Partitions []*InputPartition
	// Workspaces is the consent state after the whole settings file, by
	// workspace id.
	Workspaces map[string]*Workspace
	// SettingsLines counts the settings lines; SettingsSkipped the
	// unreadable ones (contract §4), which exclude the workspaces they name.
	SettingsLines, SettingsSkipped int
	// Unattributable lists the line numbers of unreadable settings records
	// that name no workspace (a run stops on them unless told to skip).
	Unattributable []int
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
	// Minor is the age gate's reason for a campaign.metrics event (contract
	// §3.4), "" for none.
	Minor string
}

// Message tells whether the line is a message event (contract §3.2: any type
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
	// Unreadable: the last record that changed the state was unreadable;
	// the workspace is excluded (consent_unreadable) as if opted out;
	// UnreadableLine is that record's line.
	Unreadable     bool
	UnreadableLine int
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
// must be excluded for at ingest (workspace_deleted, consent_unreadable,
// opted_out, consent_unknown), or ReasonNone when its events may
// contribute.
func (in *Input) ExpectedReason(id string) pipeline.Reason {
	ws := in.Workspaces[id]
	switch {
	case ws == nil && in.UnknownExcluded:
		return pipeline.ReasonConsentUnknown
	case ws == nil:
		return pipeline.ReasonNone
	case ws.Deleted:
		return pipeline.ReasonWorkspaceDeleted
	case ws.Unreadable:
		return pipeline.ReasonConsentUnreadable
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

// The allowlist of contract §3.3, verify's own copy.
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

// readSettings applies the settings file's records in line order under the
// rules of contract §4: a workspace's first record sets its state whatever the
// role; an opt-out is always honoured; an opt-in counts only from an owner
// or admin; deletion is final; an unreadable record excludes the
// workspaces it names as if they opted out.
func (in *Input) readSettings(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	defer f.Close()
	err = consent.Scan(f, func(n int, rd consent.Reading) error {
		in.SettingsLines++
		if rd.Err != nil {
			in.SettingsSkipped++
			if len(rd.Workspaces) == 0 {
				in.Unattributable = append(in.Unattributable, n)
			}
			for _, id := range rd.Workspaces {
				in.unreadable(n, id, rd.Err)
			}
			return nil
		}
		rec := rd.Record
		in.apply(n, rec.WorkspaceID, rec.OptOut, rec.Deleted, rec.UpdatedAt, rec.Role)
		return nil
	})
	if err != nil {
		return fmt.Errorf("settings: %s: %w", path, err)
	}
	return nil
}

// unreadable applies an unreadable record naming workspace id.
func (in *Input) unreadable(line int, id string, why error) {
	ch := SettingsChange{Line: line, Effect: fmt.Sprintf("unreadable (%v): excluded as consent_unreadable until a readable record changes it", why)}
	ws := in.Workspaces[id]
	switch {
	case ws == nil:
		ws = &Workspace{ID: id, Unreadable: true, UnreadableLine: line}
		in.Workspaces[id] = ws
	case ws.Deleted:
		ch.Effect = fmt.Sprintf("unreadable (%v), and ignored: the workspace is deleted, which is final", why)
	default:
		ws.Unreadable, ws.UnreadableLine = true, line
	}
	ws.History = append(ws.History, ch)
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
	excluded := ws.OptedOut || ws.Unreadable
	switch {
	case ws.Deleted:
		ch.Effect = "ignored: the workspace is deleted, which is final"
	case deleted:
		ws.Deleted = true
		ch.Effect = "deleted"
		if !ws.OptedOut {
			ws.Since = at
		}
	case optOut == nil:
		ch.Effect = "no change"
	case *optOut && ws.Unreadable:
		ws.OptedOut, ws.Unreadable, ws.Since = true, false, at
		ch.Effect = "opted out"
	case *optOut == excluded:
		ch.Effect = "no change"
	case *optOut:
		ws.OptedOut, ws.Since = true, at
		ch.Effect = "opted out"
	case role == "owner" || role == "admin":
		ws.OptedOut, ws.Unreadable, ws.Since = false, false, time.Time{}
		ch.Effect = "opted in again by " + role
	default:
		ch.Effect = fmt.Sprintf("ignored: an opt-in by %q, which only an owner or admin may make", role)
	}
	ws.History = append(ws.History, ch)
}
