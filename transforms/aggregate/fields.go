package aggregate

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/mya/deid/pipeline"
)

// fieldType says how a declaration may use an event field.
type fieldType uint8

const (
	// fieldString is a normalized string: a dimension.
	fieldString fieldType = iota + 1
	// fieldNumber is an integer bucketed into a dimension.
	fieldNumber
	// fieldCounter is an integer counter: summed into a measure.
	fieldCounter
	// fieldID is an identifier: an entity, pseudonymized before it is kept.
	fieldID
)

// String names the type for messages.
func (t fieldType) String() string {
	switch t {
	case fieldString:
		return "a string dimension field"
	case fieldNumber:
		return "a numeric dimension field"
	case fieldCounter:
		return "a counter"
	case fieldID:
		return "an identifier"
	}
	return "unknown"
}

// field is one row of the field table: how to read an event field without
// reflection. kind is the event kind whose payload holds it; envelope
// fields (kind 0) are on every event.
type field struct {
	typ  fieldType
	kind pipeline.EventKind
	// upper tells that the decoder upper-cases the string field (a
	// country code); the others it lower-cases.
	upper bool
	// closed is the fixed list the decoder already closes the string field
	// to (anything else it reads as other), nil for an open field: a
	// declared value outside it could never occur.
	closed []string
	str    func(*pipeline.Event) string
	num    func(*pipeline.Event) int64
	id     func(*pipeline.Event) []byte
	// at is a counter's offset in pipeline.Event: the aggregator reads
	// counters by offset, one load each, rather than calling num, which
	// stays the reference (TestCounterOffsets).
	at uintptr
}

// Offsets of the event's payloads, for the counters' offsets.
var (
	campaignAt = unsafe.Offsetof(pipeline.Event{}.Campaign)
	usageAt    = unsafe.Offsetof(pipeline.Event{}.Usage)
)

const (
	campaign = pipeline.KindCampaignMetrics
	usage    = pipeline.KindUsageInteraction
)

// fields is the field table: every event field a dataset declaration may
// use (contract §3.3). The accessors are copied into each aggregator when it is
// built, so the hot path calls them directly.
var fields = map[string]field{
	// String dimensions.
	"platform": {typ: fieldString, kind: campaign, closed: []string{"instagram", "tiktok", "x", "linkedin", "youtube"},
		str: func(e *pipeline.Event) string { return e.Campaign.Platform }},
	"content_type": {typ: fieldString, kind: campaign, closed: []string{"post", "reel", "story", "video", "short", "live", "article"},
		str: func(e *pipeline.Event) string { return e.Campaign.ContentType }},
	"industry":         {typ: fieldString, kind: campaign, str: func(e *pipeline.Event) string { return e.Campaign.Industry }},
	"audience_country": {typ: fieldString, kind: campaign, upper: true, str: func(e *pipeline.Event) string { return e.Campaign.Country }},
	"feature":          {typ: fieldString, kind: usage, str: func(e *pipeline.Event) string { return e.Usage.Feature }},
	"action": {typ: fieldString, kind: usage, closed: []string{"view", "click", "create", "update", "delete", "export"},
		str: func(e *pipeline.Event) string { return e.Usage.Action }},
	"plan_tier": {typ: fieldString, kind: usage, closed: []string{"free", "pro", "business", "enterprise"},
		str: func(e *pipeline.Event) string { return e.Usage.PlanTier }},
	"device_type": {typ: fieldString, kind: usage, closed: []string{"desktop", "mobile", "tablet"},
		str: func(e *pipeline.Event) string { return e.Usage.DeviceType }},

	// Numeric dimensions, bucketed at level 0.
	"follower_count": {typ: fieldNumber, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.FollowerCount }},
	"team_size":      {typ: fieldNumber, kind: usage, num: func(e *pipeline.Event) int64 { return e.Usage.TeamSize }},

	// Counters.
	"impressions":   {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Impressions }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Impressions)},
	"reach":         {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Reach }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Reach)},
	"clicks":        {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Clicks }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Clicks)},
	"likes":         {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Likes }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Likes)},
	"comments":      {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Comments }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Comments)},
	"shares":        {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Shares }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Shares)},
	"saves":         {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Saves }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Saves)},
	"video_views":   {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.VideoViews }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.VideoViews)},
	"conversions":   {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.Conversions }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.Conversions)},
	"spend_cents":   {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.SpendCents }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.SpendCents)},
	"revenue_cents": {typ: fieldCounter, kind: campaign, num: func(e *pipeline.Event) int64 { return e.Campaign.RevenueCents }, at: campaignAt + unsafe.Offsetof(pipeline.CampaignMetrics{}.RevenueCents)},
	"duration_ms":   {typ: fieldCounter, kind: usage, num: func(e *pipeline.Event) int64 { return e.Usage.DurationMs }, at: usageAt + unsafe.Offsetof(pipeline.UsageInteraction{}.DurationMs)},

	// Identifiers.
	"workspace_id": {typ: fieldID, id: func(e *pipeline.Event) []byte { return e.WorkspaceID }},
	"user_id":      {typ: fieldID, id: func(e *pipeline.Event) []byte { return e.UserID }},
	"creator_id":   {typ: fieldID, kind: campaign, id: func(e *pipeline.Event) []byte { return e.Campaign.CreatorID }},
	"campaign_id":  {typ: fieldID, kind: campaign, id: func(e *pipeline.Event) []byte { return e.Campaign.CampaignID }},
}

// WorkspaceField is the field of the workspace entity: the key of every
// contribution and the unit of consent and of k-anonymity.
const WorkspaceField = "workspace_id"

// eventTypes maps the event types a dataset may take to their kinds.
// Message types are absent on purpose: they are never aggregated (P4).
var eventTypes = map[string]pipeline.EventKind{
	"campaign.metrics":  campaign,
	"usage.interaction": usage,
}

// fieldNames lists the fields of type t, sorted, for messages.
func fieldNames(t fieldType) string {
	var names []string
	for n, f := range fields {
		if f.typ == t {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// availableIn tells whether f can be read from every kind in kinds.
func (f field) availableIn(kinds []pipeline.EventKind) bool {
	if f.kind == 0 {
		return true
	}
	for _, k := range kinds {
		if k != f.kind {
			return false
		}
	}
	return true
}

// normalForm returns v as normalization leaves a value of the string field
// f (contract §3.6): trimmed, lower-cased, or upper-cased for a country code.
// A declared value that differs from its normal form could never match.
func (f field) normalForm(v string) string {
	v = strings.TrimSpace(v)
	if f.upper {
		return strings.ToUpper(v)
	}
	return strings.ToLower(v)
}
