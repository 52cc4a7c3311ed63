package agegate

import "github.com/mya/deid/pipeline"

// Gate is the age gate. The zero value is ready to use and safe for
// concurrent use.
type Gate struct{}

// Check returns the age reason to exclude ev for, or ReasonNone.
func (Gate) Check(ev *pipeline.Event) pipeline.Reason {
	if ev.Kind != pipeline.KindCampaignMetrics || !ev.Campaign.HasAge {
		return pipeline.ReasonNone
	}
	switch age := ev.Campaign.CreatorAge; {
	case age < 13:
		return pipeline.ReasonMinorUnder13
	case age <= 17 && !ev.Campaign.GuardianConsent:
		return pipeline.ReasonMinorWithoutGuardianConsent
	}
	return pipeline.ReasonNone
}
