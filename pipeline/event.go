package pipeline

// EventKind is the decoded class of an event_type (contract §3.2).
type EventKind uint8

const (
	// KindUnsupported is any event type deid does not aggregate or know.
	KindUnsupported EventKind = iota
	// KindCampaignMetrics is "campaign.metrics".
	KindCampaignMetrics
	// KindUsageInteraction is "usage.interaction".
	KindUsageInteraction
	// KindMessage is a private message or direct communication: "message.*"
	// and "support.message". Its payload is never read.
	KindMessage
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case KindCampaignMetrics:
		return "campaign.metrics"
	case KindUsageInteraction:
		return "usage.interaction"
	case KindMessage:
		return "message"
	}
	return "unsupported"
}

// Event is one well-formed input record, decoded through the allowlist of
// contract §3.3. It holds only allowlisted fields; nothing else of the input is
// ever copied into it.
//
// The byte slices (EventID, EventType, WorkspaceID, UserID and the ids in
// Campaign) alias the record's Value: they are valid only while the record
// is, and must be copied (or pseudonymized) before anything keeps them.
// Dimension strings are normalized (contract §3.6) and may be shared between
// events: never modify them.
type Event struct {
	Kind      EventKind
	EventID   []byte
	EventType []byte
	// OccurredAt is the event time in microseconds since the Unix epoch, UTC.
	OccurredAt  int64
	WorkspaceID []byte
	// UserID is empty when the envelope had none.
	UserID []byte

	// Campaign is set when Kind is KindCampaignMetrics.
	Campaign CampaignMetrics
	// Usage is set when Kind is KindUsageInteraction.
	Usage UsageInteraction
}

// CampaignMetrics is the allowlisted payload of "campaign.metrics".
type CampaignMetrics struct {
	CampaignID []byte
	CreatorID  []byte
	// Platform, ContentType: normalized to their closed value sets, else "other".
	Platform    string
	ContentType string
	// Industry: lower-cased dotted taxonomy "parent.leaf"; empty → "other".
	Industry string
	// Country: ISO 3166-1 alpha-2, upper-cased; unknown or absent → "ZZ".
	Country       string
	FollowerCount int64
	// HasAge tells whether creator_age was present.
	HasAge          bool
	CreatorAge      int64
	GuardianConsent bool

	Impressions, Reach, Clicks, Likes, Comments, Shares, Saves int64
	VideoViews, Conversions, SpendCents, RevenueCents          int64
}

// UsageInteraction is the allowlisted payload of "usage.interaction".
type UsageInteraction struct {
	// Feature: lower-cased dotted taxonomy "family.feature"; empty → "other".
	Feature string
	// Action, PlanTier, DeviceType: normalized to their closed value sets, else "other".
	Action     string
	PlanTier   string
	DeviceType string
	TeamSize   int64
	DurationMs int64
}

// Reset clears e for reuse, keeping nothing of the previous record.
func (e *Event) Reset() { *e = Event{} }
