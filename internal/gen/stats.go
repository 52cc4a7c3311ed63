package gen

import (
	"slices"
	"time"

	"github.com/mya/deid/pipeline"
)

// CanaryMarker starts every canary string the generator plants in free
// text (message bodies, captions, comments), followed by 16 hex digits. No
// output of deid may ever contain it: grep for it.
const CanaryMarker = "DEIDCANARY"

// Hazard names one kind of hazardous event line.
type Hazard string

// The line hazards, counted in Stats.Hazards (lines, or planted strings for
// HazardCanary).
const (
	HazardMessage             Hazard = "message"                // message.* and support.message events, with bodies
	HazardPII                 Hazard = "pii_payload"            // campaign payloads with caption, email, phone, ...
	HazardCanary              Hazard = "canary"                 // canary strings planted in free text
	HazardUnsupported         Hazard = "unsupported_event_type" // account.login, billing.invoice, ...
	HazardMinorUnder13        Hazard = "minor_under_13"
	HazardMinorWithConsent    Hazard = "minor_with_guardian_consent" // 13-17, guardian_consent true
	HazardMinorWithoutConsent Hazard = "minor_without_guardian_consent"
	HazardDuplicate           Hazard = "duplicate"     // an earlier line of the partition sent again
	HazardMalformed           Hazard = "malformed"     // see Stats.Malformed for the kinds
	HazardLate                Hazard = "late"          // for a window already closed in its partition
	HazardFarFuture           Hazard = "far_future"    // occurred_at years ahead
	HazardOddDimension        Hazard = "odd_dimension" // odd casing, padding or unknown values
	HazardTimestampVariant    Hazard = "timestamp_variant"
	HazardNonASCIIEscapes     Hazard = "unicode_escapes" // free text written with \uXXXX escapes
	HazardPayloadFirst        Hazard = "payload_first"   // "payload" before the envelope fields
)

// Hazard indexes, in the order of hazardNames.
const (
	hzMessage = iota
	hzPII
	hzCanary
	hzUnsupported
	hzMinorUnder13 // then hzMinorUnder13+1, +2: with and without consent
	hzMinorWithConsent
	hzMinorWithoutConsent
	hzDuplicate
	hzMalformed
	hzLate
	hzFarFuture
	hzOddDimension
	hzTimestampVariant
	hzNonASCIIEscapes
	hzPayloadFirst
	numHazards
)

var hazardNames = [numHazards]Hazard{HazardMessage, HazardPII, HazardCanary, HazardUnsupported, HazardMinorUnder13,
	HazardMinorWithConsent, HazardMinorWithoutConsent, HazardDuplicate, HazardMalformed, HazardLate,
	HazardFarFuture, HazardOddDimension, HazardTimestampVariant, HazardNonASCIIEscapes, HazardPayloadFirst}

// Hazards lists every line hazard, for tests that want each one present.
func Hazards() []Hazard { return append([]Hazard(nil), hazardNames[:]...) }

// Dataset names the events contribute to (contract §6).
const (
	DatasetCampaignMetrics = "campaign_metrics"
	DatasetUsagePatterns   = "usage_patterns"
)

// Expected is what deid must make of a set of event lines under the contract's
// defaults: window 24h, max_out_of_orderness 10m, allowed_lateness 1h,
// consent.unknown_workspaces exclude, the settings file read whole before
// any event, and a processing time later than every ordinary event (plus
// max_future_skew) but years before the far-future ones. Every line counts
// in exactly one of the three maps.
type Expected struct {
	// Contributed counts lines by the dataset they contribute to.
	Contributed map[string]int64
	// Excluded counts lines by exclusion reason (pipeline.Reason strings).
	Excluded map[string]int64
	// DeadLetters counts malformed lines by MalformedError code.
	DeadLetters map[string]int64
}

func newExpected() Expected {
	return Expected{Contributed: map[string]int64{}, Excluded: map[string]int64{}, DeadLetters: map[string]int64{}}
}

// Total returns the number of lines counted.
func (e Expected) Total() int64 {
	var n int64
	for _, m := range []map[string]int64{e.Contributed, e.Excluded, e.DeadLetters} {
		for _, v := range m {
			n += v
		}
	}
	return n
}

func (e Expected) add(o Expected) {
	for _, p := range [][2]map[string]int64{{e.Contributed, o.Contributed}, {e.Excluded, o.Excluded}, {e.DeadLetters, o.DeadLetters}} {
		for k, v := range p[1] {
			p[0][k] += v
		}
	}
}

// PartitionStats describes one partition's event lines.
type PartitionStats struct {
	Lines int64
	// Bytes counts the lines' bytes, newlines excluded.
	Bytes    int64
	Expected Expected
}

// Workspaces lists the workspace ids by consent history, each sorted.
type Workspaces struct {
	// All holds every workspace, sorted.
	All []string
	// OptedOut holds the workspaces opted out at the end of the settings:
	// those that opted out and those an editor tried to opt back in.
	OptedOut []string
	// Deleted holds the deleted workspaces; DeletedByTombstone those of them
	// deleted by a record with only workspace_id and deleted.
	Deleted            []string
	DeletedByTombstone []string
	// Unknown holds the workspaces with events and no settings record.
	Unknown []string
	// ReOptInEditor holds the workspaces opted out and then "opted in" by an
	// editor: the opt-in must be ignored. They are in OptedOut too.
	ReOptInEditor []string
	// ReOptInOwner holds the workspaces opted out and then opted in by an
	// owner: they are included again.
	ReOptInOwner []string
	// Unreadable holds the workspaces named by an unreadable settings
	// record (and by no later readable one): excluded, consent_unreadable.
	Unreadable []string
}

// SettingsStats describes the settings lines.
type SettingsStats struct {
	// Lines counts every settings line; Malformed the unreadable ones,
	// each of which excludes the workspace it names (consent_unreadable).
	Lines     int64
	Malformed int64
	// Tombstones counts the deletions written as {"workspace_id","deleted":true}.
	Tombstones int64
	// IgnoredOptIns counts the opt-ins by a role that may not opt in.
	IgnoredOptIns int64
	// AfterDeletion counts the records for an already deleted workspace.
	AfterDeletion int64
}

// Stats describes what Generate wrote, so tests can hold deid's accounting
// against it.
type Stats struct {
	// Events counts event lines; Bytes their bytes, newlines excluded.
	Events int64
	Bytes  int64
	// Partitions describes each partition, by number.
	Partitions []PartitionStats
	// ByType counts event lines by the event_type they were built as
	// (malformed lines included, even when the field is missing or broken).
	ByType map[string]int64
	// Hazards counts the line hazards.
	Hazards map[Hazard]int64
	// Malformed counts malformed lines (far-future ones included) by the
	// MalformedError code deid must give them.
	Malformed map[string]int64
	// Expected is deid's expected accounting over all partitions.
	Expected   Expected
	Settings   SettingsStats
	Workspaces Workspaces
	// FirstEvent and LastEvent bound the event times of the ordinary
	// events (late ones may be earlier; far-future ones are years later).
	FirstEvent, LastEvent time.Time

	consent map[string]string
}

// ConsentReason returns the exclusion reason deid must give, at ingest, to
// the events of workspace id ("" when they are included): workspace_deleted,
// consent_unreadable, opted_out or consent_unknown.
func (s *Stats) ConsentReason(id string) string { return s.consent[id] }

// consentReason maps a workspace kind to its ingest exclusion reason.
func consentReason(kind int) string {
	switch kind {
	case wsOptedOut, wsReOptInEditor:
		return pipeline.ReasonOptedOut.String()
	case wsDeleted:
		return pipeline.ReasonWorkspaceDeleted.String()
	case wsUnknown:
		return pipeline.ReasonConsentUnknown.String()
	case wsUnreadable:
		return pipeline.ReasonConsentUnreadable.String()
	}
	return ""
}

func (s *Stats) fillWorkspaces(w *world, tombstoned map[string]bool) {
	s.consent = map[string]string{}
	var ws Workspaces
	for _, x := range w.ws {
		ws.All = append(ws.All, x.id)
		if r := consentReason(x.kind); r != "" {
			s.consent[x.id] = r
		}
		switch x.kind {
		case wsOptedOut:
			ws.OptedOut = append(ws.OptedOut, x.id)
		case wsReOptInEditor:
			ws.OptedOut = append(ws.OptedOut, x.id)
			ws.ReOptInEditor = append(ws.ReOptInEditor, x.id)
		case wsDeleted:
			ws.Deleted = append(ws.Deleted, x.id)
			if tombstoned[x.id] {
				ws.DeletedByTombstone = append(ws.DeletedByTombstone, x.id)
			}
		case wsUnknown:
			ws.Unknown = append(ws.Unknown, x.id)
		case wsReOptInOwner:
			ws.ReOptInOwner = append(ws.ReOptInOwner, x.id)
		case wsUnreadable:
			ws.Unreadable = append(ws.Unreadable, x.id)
		}
	}
	for _, l := range []*[]string{&ws.All, &ws.OptedOut, &ws.Deleted, &ws.DeletedByTombstone, &ws.Unknown, &ws.ReOptInEditor, &ws.ReOptInOwner, &ws.Unreadable} {
		slices.Sort(*l)
	}
	s.Workspaces = ws
}
