package pipeline

// Disposition is what became of one input record. Every record read gets
// exactly one.
type Disposition uint8

const (
	// Contributed: the record was aggregated into one dataset's window.
	Contributed Disposition = iota + 1
	// Excluded: the record was dropped by a gate, with a Reason.
	Excluded
	// DeadLetter: the record was malformed (contract §3.1).
	DeadLetter
)

// String returns the stable name of the disposition.
func (d Disposition) String() string {
	switch d {
	case Contributed:
		return "contributed"
	case Excluded:
		return "excluded"
	case DeadLetter:
		return "dead_letter"
	}
	return "unknown"
}

// Reason is why a record, or a cell's contributions, were excluded. The
// string forms are stable: they are written to the exclusion log, manifests
// and metrics, and compliance reads them.
type Reason uint8

// Record-level reasons, in gate order (contract §3.7), then publish-time reasons.
const (
	ReasonNone Reason = iota
	ReasonLateEvent
	ReasonDuplicate
	ReasonMessageContent
	ReasonUnsupportedEventType
	ReasonWorkspaceDeleted
	ReasonConsentUnreadable
	ReasonOptedOut
	ReasonConsentUnknown
	ReasonMinorUnder13
	ReasonMinorWithoutGuardianConsent
	ReasonOptedOutBeforePublish
	ReasonDeletedBeforePublish
	ReasonSuppressedFrequency
	ReasonSuppressedDominance
	// ReasonConsentUnreadableBeforePublish withdraws, at publication, the
	// contributions of a workspace whose settings record was unreadable.
	ReasonConsentUnreadableBeforePublish
	// ReasonConsentUnattributable marks a settings record that could not be
	// read and names no workspace, skipped under consent.unattributable:
	// skip. It is never the reason of an input record.
	ReasonConsentUnattributable
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:                        "",
	ReasonLateEvent:                   "late_event",
	ReasonDuplicate:                   "duplicate",
	ReasonMessageContent:              "message_content",
	ReasonUnsupportedEventType:        "unsupported_event_type",
	ReasonWorkspaceDeleted:            "workspace_deleted",
	ReasonConsentUnreadable:           "consent_unreadable",
	ReasonOptedOut:                    "opted_out",
	ReasonConsentUnknown:              "consent_unknown",
	ReasonMinorUnder13:                "minor_under_13",
	ReasonMinorWithoutGuardianConsent: "minor_without_guardian_consent",
	ReasonOptedOutBeforePublish:       "opted_out_before_publish",
	ReasonDeletedBeforePublish:        "deleted_before_publish",
	ReasonSuppressedFrequency:         "suppressed_frequency",
	ReasonSuppressedDominance:         "suppressed_dominance",

	ReasonConsentUnreadableBeforePublish: "consent_unreadable_before_publish",
	ReasonConsentUnattributable:          "consent_unattributable",
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
		ReasonWorkspaceDeleted, ReasonConsentUnreadable, ReasonOptedOut, ReasonConsentUnknown, ReasonMinorUnder13, ReasonMinorWithoutGuardianConsent}
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
