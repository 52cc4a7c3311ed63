package pipeline

// Reason is why a record, or a cell's contributions, were excluded. The
// string forms are stable: they are written to the exclusion log, manifests
// and metrics, and compliance reads them.
type Reason uint8

// Record-level reasons, in gate order (SPEC §3.7), then publish-time reasons.
const (
	ReasonNone Reason = iota
	ReasonLateEvent
	ReasonDuplicate
	ReasonMessageContent
	ReasonUnsupportedEventType
	ReasonWorkspaceDeleted
	ReasonOptedOut
	ReasonConsentUnknown
	ReasonMinorUnder13
	ReasonMinorWithoutGuardianConsent
	ReasonOptedOutBeforePublish
	ReasonDeletedBeforePublish
	ReasonSuppressedFrequency
	ReasonSuppressedDominance
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:                        "",
	ReasonLateEvent:                   "late_event",
	ReasonDuplicate:                   "duplicate",
	ReasonMessageContent:              "message_content",
	ReasonUnsupportedEventType:        "unsupported_event_type",
	ReasonWorkspaceDeleted:            "workspace_deleted",
	ReasonOptedOut:                    "opted_out",
	ReasonConsentUnknown:              "consent_unknown",
	ReasonMinorUnder13:                "minor_under_13",
	ReasonMinorWithoutGuardianConsent: "minor_without_guardian_consent",
	ReasonOptedOutBeforePublish:       "opted_out_before_publish",
	ReasonDeletedBeforePublish:        "deleted_before_publish",
	ReasonSuppressedFrequency:         "suppressed_frequency",
	ReasonSuppressedDominance:         "suppressed_dominance",
}

// String returns the reason's stable name ("" for ReasonNone).
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// RecordReasons lists the reasons a single input record can be excluded for,
// in gate order.
func RecordReasons() []Reason {
	return []Reason{ReasonLateEvent, ReasonDuplicate, ReasonMessageContent, ReasonUnsupportedEventType,
		ReasonWorkspaceDeleted, ReasonOptedOut, ReasonConsentUnknown, ReasonMinorUnder13, ReasonMinorWithoutGuardianConsent}
}

// ParseReason returns the reason with the given stable name.
func ParseReason(s string) (Reason, bool) {
	for r, name := range reasonNames {
		if name == s && r != int(ReasonNone) {
			return Reason(r), true
		}
	}
	return ReasonNone, false
}
